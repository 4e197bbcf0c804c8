"""fedrobust: Byzantine-robust, communication-efficient federated learning on Flower.

Main parts
----------
- :mod:`fedrobust.strategies`: Flower strategies (server logic).
- :mod:`fedrobust.clients`: Flower clients for honest and Byzantine workers.
- :mod:`fedrobust.attacks`: the attack library.
- :mod:`fedrobust.aggregators`: pure, vectorised robust aggregation functions (torch).
- :mod:`fedrobust.compression`: compressors with compact wire payloads.
- :mod:`fedrobust.data`, :mod:`fedrobust.models`: offline datasets, partitioners and models.
- :mod:`fedrobust.plugin`: robust drop-in ``FedAvg`` replacements for ordinary Flower apps.
- :mod:`fedrobust.config`: the run configuration; :mod:`fedrobust.run`: building and running one
  configuration; :mod:`fedrobust.experiments`: sweeps and reports; :mod:`fedrobust.deploy`: a real
  SuperLink + SuperNodes deployment; :mod:`fedrobust.core`: leaf helpers.

Modules moved by the layered layout stay importable under their old paths
(:mod:`fedrobust._old_paths`).

Nothing here imports torchvision at import time.
"""

from . import _old_paths
from ._version import __version__

_old_paths.install()

__all__ = ["__version__", "simulate"]


def __getattr__(name: str):
    # ``fedrobust.simulate`` without importing torch and Flower on ``import fedrobust``.
    if name == "simulate":
        from .run.simulation import simulate

        return simulate
    raise AttributeError(f"module 'fedrobust' has no attribute {name!r}")
