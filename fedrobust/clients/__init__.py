"""Flower clients for honest and Byzantine workers.

One :class:`flwr.client.NumPyClient` subclass per client protocol a strategy needs; ``CLIENTS``
maps a strategy's ``protocol`` to its client class:

- ``"gradient"``: :class:`GradientClient` returns one minibatch stochastic gradient at x.
- ``"local-steps"``: :class:`LocalStepsClient` runs H local SGD steps and returns x − y.

>>> sorted(CLIENTS)
['gradient', 'local-steps']
"""

from .base import HonestClient, batch_generator
from .gradient import GradientClient
from .local_steps import LocalStepsClient

CLIENTS: dict[str, type[HonestClient]] = {cls.protocol: cls for cls in (GradientClient, LocalStepsClient)}

__all__ = ["CLIENTS", "HonestClient", "GradientClient", "LocalStepsClient", "batch_generator"]
