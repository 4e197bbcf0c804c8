"""Compressors with compact wire payloads (δ-approximate compressors).

A δ-approximate compressor Q satisfies ‖Q(x) − x‖² <= (1 − δ)‖x‖² for every x, the class used by
Ghosh, Maity, Kadhe, Mazumdar and Ramchandran (2021), "Communication-Efficient and Byzantine-Robust
Distributed Learning with Error Feedback".

Each compressor encodes a flat float tensor into a small ``dict[str, np.ndarray]`` that travels in
Flower messages (packed sign bits, index + value pairs, a seed plus values, integer levels plus a
norm) and decodes an untrusted payload back into a dense float32 tensor.

==================  ==========================================  ==========================  ==========
name                Q(x)                                        bytes on the wire           unbiased
==================  ==========================================  ==========================  ==========
``identity``        x                                           4·d                         yes
``top-k``           x on the k largest |x_i|                    8·k                         no
``rand-k``          x on k seeded random coordinates (·d/k)     4·k + 8                     if rescale
``qsgd``            n·sign(x)·level/s, stochastic levels        d + 4 per bucket (**)       yes
``scaled-sign``     (‖x‖₁/d)·sign(x)                            ceil(d/8) + 4 (*)           no
``sign``            sign(x)                                     ceil(d/8) (*)               no
``bernoulli-qsgd``  ‖x‖₂·sign(x_i)·Bernoulli(|x_i|/‖x‖₂)        ceil(d/8)+ceil(nnz/8)+4     yes
==================  ==========================================  ==========================  ==========

(*) plus ceil(d/8) when x contains an exact zero. (**) 2·d for s > 127; one bucket by default.
``rand-k`` does not rescale by default (``rescale=False``: biased, δ = k/d).

Examples
--------
>>> import torch
>>> from fedrobust.compression import get_compressor, payload_nbytes
>>> q = get_compressor("top-k", k=2)
>>> x = torch.tensor([0.5, -4.0, 1.0, 3.0])
>>> payload = q.encode(x)
>>> payload_nbytes(payload)
16
>>> q.decode(payload, d=4)
tensor([ 0., -4.,  0.,  3.])
>>> q.delta(4), q.unbiased, q.name
(0.5, False, 'top-k')
"""

from .base import Compressor
from .identity import Identity
from .payload import PayloadError, payload_from_ndarrays, payload_nbytes, payload_to_ndarrays
from .qsgd import QSGD, BernoulliQSGD
from .registry import COMPRESSORS, get_compressor, register_compressor
from .sign import ScaledSign, Sign
from .sparse import RandK, TopK

__all__ = [
    "COMPRESSORS",
    "Compressor",
    "PayloadError",
    "get_compressor",
    "register_compressor",
    "payload_nbytes",
    "payload_to_ndarrays",
    "payload_from_ndarrays",
    "Identity",
    "TopK",
    "RandK",
    "QSGD",
    "BernoulliQSGD",
    "Sign",
    "ScaledSign",
]
