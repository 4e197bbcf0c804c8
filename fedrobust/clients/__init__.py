"""Flower clients for honest and Byzantine workers.

One :class:`flwr.client.NumPyClient` subclass per client protocol a strategy needs; ``CLIENTS``
maps a strategy's ``protocol`` to its client class:

- ``"gradient"``: :class:`GradientClient` returns one minibatch stochastic gradient at x.
- ``"local-steps"``: :class:`LocalStepsClient` runs H local SGD steps and returns x − y.
- ``"compressed-gradient"`` / ``"compressed-local-steps"``: the same messages sent as the round's
  compressor's compact payload (:mod:`fedrobust.clients.compressed`; QBGMD, FL-BGMD, signSGD).
- ``"compressed-gradient-norm"``: Q(g) plus the reported norm ‖g‖ (norm-threshold, Ghosh et al.,
  2021, Alg. 1).
- ``"error-feedback"``: Q(lr·g + e) with the error memory e in ``Context.state`` (Ghosh et al., 2021, Alg. 2).
- ``"rsa"``: the C-RSA worker (He et al., 2023) with its own model x_k in ``Context.state``, ternary replies
  (C-RSA, RSA).
- ``"cubic"``: Q(s), a cubic-regularised Newton step on the local data (FED-CURE, Ghosh et al., 2023).

The papers: Ghosh, Maity, Kadhe, Mazumdar and Ramchandran (2021), "Communication-Efficient and
Byzantine-Robust Distributed Learning with Error Feedback"; He, Zhu and Ling (2023), "C-RSA: Byzantine-robust
and communication-efficient distributed learning in the non-convex and non-IID regime"; Ghosh, Maity and
Mazumdar (2023), "FED-CURE: A Robust Federated Learning Algorithm with Cubic Regularized Newton".

A Byzantine client is :class:`ByzantineClient` around the honest client of the protocol: in the
rounds it is Byzantine it runs that protocol on poisoned data, or corrupts the honest message
before it is encoded, so it always answers in the protocol's wire format.

>>> sorted(CLIENTS)  # doctest: +NORMALIZE_WHITESPACE
['compressed-gradient', 'compressed-gradient-norm', 'compressed-local-steps', 'cubic', 'error-feedback',
 'gradient', 'local-steps', 'rsa']
"""

from .base import HonestClient, batch_generator
from .byzantine import ByzantineClient, attack_generator
from .compressed import CompressedGradientClient, CompressedLocalStepsClient
from .error_feedback import ErrorFeedbackClient
from .fed_cure import CubicClient
from .gradient import GradientClient
from .local_steps import LocalStepsClient
from .norm_threshold import CompressedGradientNormClient
from .rsa import RSAClient

CLIENTS: dict[str, type[HonestClient]] = {
    cls.protocol: cls
    for cls in (
        GradientClient, LocalStepsClient, CompressedGradientClient, CompressedLocalStepsClient,
        CompressedGradientNormClient, ErrorFeedbackClient, RSAClient, CubicClient,
    )
}

__all__ = [
    "CLIENTS",
    "HonestClient",
    "GradientClient",
    "LocalStepsClient",
    "CompressedGradientClient",
    "CompressedLocalStepsClient",
    "CompressedGradientNormClient",
    "ErrorFeedbackClient",
    "RSAClient",
    "CubicClient",
    "ByzantineClient",
    "batch_generator",
    "attack_generator",
]
