"""Flower clients for honest and Byzantine workers.

One :class:`flwr.client.NumPyClient` subclass per client protocol a strategy needs; ``CLIENTS``
maps a strategy's ``protocol`` to its client class:

- ``"gradient"``: :class:`GradientClient` returns one minibatch stochastic gradient at x.
- ``"local-steps"``: :class:`LocalStepsClient` runs H local SGD steps and returns x − y.
- ``"compressed-gradient"`` / ``"compressed-local-steps"``: the same messages sent as the round's
  compressor's compact payload (:mod:`fedrobust.clients.compressed`; QBGMD and FL-BGMD).

A Byzantine client is :class:`ByzantineClient` around the honest client of the protocol: in the
rounds it is Byzantine it runs that protocol on poisoned data, or corrupts the honest message
before it is encoded, so it always answers in the protocol's wire format.

>>> sorted(CLIENTS)
['compressed-gradient', 'compressed-local-steps', 'gradient', 'local-steps']
"""

from .base import HonestClient, batch_generator
from .byzantine import ByzantineClient, attack_generator
from .compressed import CompressedGradientClient, CompressedLocalStepsClient
from .gradient import GradientClient
from .local_steps import LocalStepsClient

CLIENTS: dict[str, type[HonestClient]] = {
    cls.protocol: cls
    for cls in (GradientClient, LocalStepsClient, CompressedGradientClient, CompressedLocalStepsClient)
}

__all__ = [
    "CLIENTS",
    "HonestClient",
    "GradientClient",
    "LocalStepsClient",
    "CompressedGradientClient",
    "CompressedLocalStepsClient",
    "ByzantineClient",
    "batch_generator",
    "attack_generator",
]
