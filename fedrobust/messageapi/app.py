"""The Message-API Flower App: ``server_app`` (``@app.main()``) and ``client_app`` (``@app.train()``).

The components of a run with ``api = "message"``; :func:`fedrobust.simulate` builds them bound to
a config with :func:`make_server_app` and :func:`make_client_app`. For ``flwr run .`` name them in
``pyproject.toml``::

    [tool.flwr.app.components]
    serverapp = "fedrobust.messageapi:server_app"
    clientapp = "fedrobust.messageapi:client_app"

and pass ``--run-config "api='message'"``.

- Server: a :class:`~fedrobust.messageapi.MessageStrategy` around the legacy core that
  :func:`fedrobust.run.app.make_strategy` builds (model from the run seed, central evaluation, results
  JSON written to ``output`` after the last round), started with ``strategy.start(grid=...)``.
- Client: the node's client from :func:`fedrobust.run.app.make_client` (the honest client of the
  strategy's protocol, wrapped in a Byzantine one where the partition may attack), so both APIs
  run the same client code. ``train`` messages go to its ``fit``, ``query`` messages to its
  ``get_properties`` (the partition id the server samples by).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flwr.app import ConfigRecord, Context, Error, Message
from flwr.clientapp import ClientApp
from flwr.common import Code, GetPropertiesIns
from flwr.common.constant import ErrorCode
from flwr.serverapp import Grid, ServerApp

from ..run.app import make_client, make_strategy
from ..run.polling_grid import PollingServerApp
from ..config import ConfigError, RunConfig
from ..core.results import RoundRecord
from ..strategies import VectorStrategy
from ..run.build import build_attack
from ..run.handover import take_over
from .grid import LocalGrid
from .records import content_to_fitins, fitres_to_content, properties_to_content
from .strategy import MessageStrategy

__all__ = ["make_server_app", "make_client_app", "run_local", "server_app", "client_app"]


def make_server_app(
    cfg: RunConfig | None = None,
    on_round: Callable[[RoundRecord], None] | None = None,
    on_strategy: Callable[[MessageStrategy], None] | None = None,
    *,
    warn: bool = True,
) -> ServerApp:
    """A Message-API ServerApp for ``cfg`` (None: read it from ``context.run_config``).

    ``on_round`` receives every finished round record; ``on_strategy`` receives the strategy once
    built (so an in-process caller can read its results after the run); ``warn``: see
    :func:`fedrobust.run.app.make_strategy`.
    """
    app = PollingServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        run_cfg = cfg if cfg is not None else RunConfig.from_mapping(context.run_config)
        _require_message_api(run_cfg)
        strategy = MessageStrategy(make_strategy(run_cfg, on_round, warn=warn))
        if on_strategy is not None:
            on_strategy(strategy)
        try:
            strategy.start(
                grid=grid, initial_arrays=strategy.arrays(), num_rounds=strategy.core.rounds_left,
                timeout=run_cfg.round_timeout or None,
            )
        finally:  # the tensorboard log, after an error too
            strategy.core.close()

    return app


def make_client_app(cfg: RunConfig | None = None, handover: str | None = None) -> ClientApp:
    """A Message-API ClientApp for ``cfg`` (None: read it from ``context.run_config``).

    With ``cfg`` given, its attack is built here, once, and travels with the app to the client
    processes (as :func:`fedrobust.run.app.make_client_app` does), and so does ``handover`` (the
    driver's splits and partitions, :mod:`fedrobust.run.handover`).
    """
    attack = build_attack(cfg) if cfg is not None else None
    app = ClientApp()

    def client(context: Context):
        run_cfg = cfg if cfg is not None else RunConfig.from_mapping(context.run_config)
        take_over(handover)
        return make_client(run_cfg, context, attack)

    @app.train()
    def train(message: Message, context: Context) -> Message:
        res = client(context).fit(content_to_fitins(message.content))
        if res.status.code != Code.OK:  # a failed fit (a damaged state file): an error reply, no traceback
            error = Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=res.status.message)
            return Message(error, reply_to=message)
        return Message(fitres_to_content(res), reply_to=message)

    @app.query()
    def query(message: Message, context: Context) -> Message:
        res = client(context).get_properties(GetPropertiesIns(config={}))
        return Message(properties_to_content(res.properties), reply_to=message)

    return app


def run_local(
    cfg: RunConfig,
    on_round: Callable[[RoundRecord], None] | None = None,
    after_round: Callable[[VectorStrategy, int], None] | None = None,
    on_strategy: Callable[[MessageStrategy], None] | None = None,
    *,
    warn: bool = True,
    threads: int | None = None,
) -> dict[str, Any]:
    """Run ``cfg`` through the Message API in this process, on a :class:`~fedrobust.messageapi.LocalGrid`.

    The Message-API counterpart of :func:`fedrobust.run.inprocess.run_inprocess` (which calls it for
    ``api = "message"``), with the same arguments: ``on_round`` receives each finished round record,
    ``after_round(core, round)`` is called after each round with the legacy core (its ``x``),
    ``on_strategy`` receives the strategy once built; ``warn``: see :func:`fedrobust.run.app.make_strategy`.

    The rounds are those of :meth:`MessageStrategy.start <fedrobust.messageapi.MessageStrategy.start>`
    (Flower's ``Strategy.start``: the strategy's ``configure_train``, the grid's replies,
    ``aggregate_train``, then the central evaluation; there is no federated evaluation), driven
    here without Flower's ``Result`` and its logs, so that round r's evaluation can run beside
    round r + 1's clients as in the legacy in-process engine
    (:func:`~fedrobust.run.inprocess.evaluation_beside`): ``threads`` is the caller's torch thread
    count before the run (None: no evaluation thread). The records are the same either way.

    Returns
    -------
    dict
        The results document, written to ``cfg.output`` too when set.
    """
    from ..run.inprocess import evaluation_beside

    _require_message_api(cfg)
    strategy = MessageStrategy(make_strategy(cfg, on_round, warn=warn))
    if on_strategy is not None:
        on_strategy(strategy)
    core = strategy.core
    grid = LocalGrid(make_client_app(cfg), cfg.num_clients, seed=cfg.seed)
    try:
        core.evaluate(0, None)  # the initial model (nothing for a resumed run)
        arrays, last = strategy.arrays(), core.rounds_left
        with evaluation_beside(cfg, 0 if threads is None else threads, core, after_round) as evaluation:
            for rnd in range(1, last + 1):
                replies = grid.send_and_receive(strategy.configure_train(rnd, arrays, ConfigRecord(), grid), timeout=None)
                evaluation.settle()  # the last round's evaluation ran while these clients trained
                arrays, _ = strategy.aggregate_train(rnd, replies)
                evaluation.start(rnd, last=rnd == last)
    finally:  # the tensorboard log, after an error too
        core.close()
    return strategy.results()


def _require_message_api(cfg: RunConfig) -> None:
    if cfg.api != "message":
        raise ConfigError(
            f"api={cfg.api!r}, but this is the Message-API ServerApp (fedrobust.messageapi:server_app); "
            "set api='message', or use the legacy components fedrobust.run.app:server_app and fedrobust.run.app:client_app"
        )


server_app = make_server_app()
client_app = make_client_app()
