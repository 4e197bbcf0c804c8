"""Flower's Message API for every fedrobust strategy (run key ``api = "message"``).

- :class:`MessageStrategy`: a :class:`flwr.serverapp.strategy.Strategy` around a legacy
  :class:`~fedrobust.strategies.VectorStrategy` (its core), so both APIs share one implementation
  of sampling, validation, aggregation and records, and give the same model (docs/message-api.md).
- :data:`server_app` / :data:`client_app`: the App's components under this API (``@app.main()``,
  ``@app.train()``, ``@app.query()``); :func:`make_server_app` / :func:`make_client_app` bind them
  to a config.
- :class:`LocalGrid`: a Grid that runs a ClientApp in this process, and :func:`run_local`, a whole
  run on it (the in-process engine's Message-API path; tests).
- :mod:`~fedrobust.messageapi.records`: the wire format and its conversion to legacy FitIns/FitRes.
"""

from .app import client_app, make_client_app, make_server_app, run_local, server_app
from .grid import LocalGrid
from .strategy import ClientFailure, MessageStrategy, NodeProxy

__all__ = [
    "MessageStrategy",
    "NodeProxy",
    "ClientFailure",
    "LocalGrid",
    "make_server_app",
    "make_client_app",
    "run_local",
    "server_app",
    "client_app",
]
