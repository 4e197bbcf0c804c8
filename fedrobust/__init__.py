"""fedrobust: Byzantine-robust, communication-efficient federated learning on Flower.

Main parts
----------
- :mod:`fedrobust.strategies`: Flower strategies (server logic).
- :mod:`fedrobust.clients`: Flower clients for honest and Byzantine workers.
- :mod:`fedrobust.attacks`: the attack library.
- :mod:`fedrobust.aggregators`: pure, vectorised robust aggregation functions (torch).
- :mod:`fedrobust.compression`: compressors with compact wire payloads.
- :mod:`fedrobust.data`, :mod:`fedrobust.models`: offline datasets, partitioners and models.

Nothing here imports torchvision at import time.
"""

from ._version import __version__

__all__ = ["__version__", "simulate"]


def __getattr__(name: str):
    # ``fedrobust.simulate`` without importing torch and Flower on ``import fedrobust``.
    if name == "simulate":
        from .simulation import simulate

        return simulate
    raise AttributeError(f"module 'fedrobust' has no attribute {name!r}")
