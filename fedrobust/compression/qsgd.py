"""Stochastic quantisers: ``qsgd`` (s levels) and ``bernoulli-qsgd`` (FED-CURE's).

``qsgd`` is from Alistarh, Grubic, Li, Tomioka and Vojnovic (2017), "QSGD: Communication-Efficient SGD via
Gradient Quantization and Encoding" (NeurIPS); ``bernoulli-qsgd`` is the variant of Ghosh, Maity and
Mazumdar (2023), "FED-CURE: A Robust Federated Learning Algorithm with Cubic Regularized Newton".

Both use the same rounding rule, with U_i ~ U[0, 1) drawn from the seed's CPU ``torch.Generator``
(``torch.rand(d, generator=g, dtype=w)``, w = float64 for float64 input, float32 otherwise) and
n = ‖x‖₂ of the entry's bucket rounded to float32 (the value that travels)::

    r_i = (|x_i| / n) · s   (0 where n = 0),   l_i = floor(r_i),
    level_i = min(s, l_i + [U_i < r_i − l_i]),   Q(x)_i = n · (sign(x_i) · level_i / s)

(the decode is computed in float32 exactly as written on the right).

E[level_i] = r_i, so Q is unbiased (up to float32 rounding of n), with
E‖Q(x) − x‖² <= min(b/s², √b/s)‖x‖² for buckets of b entries (Alistarh et al., 2017, Lemma 3.1).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..core.checks import check_int
from . import _bits
from ._checks import make_generator, uniform, work_dtype
from .base import Compressor, to_tensor
from .payload import PayloadError, expect_finite, expect_length
from .registry import register_compressor

__all__ = ["QSGD", "BernoulliQSGD", "quantize"]

_S_MAX = 2**15 - 1


def quantize(
    x: torch.Tensor, s: int, bucket_size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Signed integer levels in [-s, s] (int32, on x's device) and float32 bucket norms (the rule above).

    Examples
    --------
    >>> levels, norms = quantize(torch.tensor([3.0, -4.0]), 5, 2, torch.Generator().manual_seed(0))
    >>> levels.tolist(), norms.tolist()
    ([3, -4], [5.0])
    """
    d = x.numel()
    w = work_dtype(x)
    nb = -(-d // bucket_size)
    xw = x.to(w)
    padded = torch.zeros(nb * bucket_size, dtype=w, device=x.device)
    padded[:d] = xw
    norms = torch.linalg.vector_norm(padded.view(nb, bucket_size), dim=1).to(torch.float32)
    if not bool(torch.isfinite(norms).all()):
        raise ValueError("x is too large to quantize: a bucket's l2 norm overflows float32")
    n = norms.to(w).repeat_interleave(bucket_size)[:d]
    r = torch.where(n > 0, xw.abs() / torch.where(n > 0, n, 1), 0) * s
    low = torch.floor(r)
    u = uniform(d, generator, w, x.device)
    levels = torch.clamp(low + (u < r - low).to(w), max=s).to(torch.int32)
    return levels * torch.sign(xw).to(torch.int32), norms


def _check_norms(norm: np.ndarray, length: int, what: str) -> None:
    expect_length(norm, length, what)
    expect_finite(norm, what, nonnegative=True)


@register_compressor("qsgd")
class QSGD(Compressor):
    """QSGD with ``s`` levels (Alistarh et al., 2017): unbiased, δ = 1 − min(b/s², √b/s).

    Payload: ``levels`` signed integers s·sign(x_i)·|Q(x)_i|/n (int8 when s <= 127, else int16;
    d or 2·d bytes) and ``norm``, the float32 ℓ2 norm of each bucket (one value without buckets).

    Parameters
    ----------
    s : int
        Number of levels, 1 <= s <= 32767 (s = 1 is FED-CURE's ``bernoulli-qsgd``, unpacked).
    bucket_size : int, optional
        Quantise consecutive buckets of this many entries, each with its own norm (QSGD's
        bucketing; lowers the variance to min(b/s², √b/s)). Default: the whole vector, b = d.

    Examples
    --------
    >>> q = QSGD(s=4)
    >>> p = q.encode(torch.tensor([3.0, -4.0, 0.0]), seed=0)
    >>> p["levels"].dtype, p["norm"]
    (dtype('int8'), array([5.], dtype=float32))
    >>> p["levels"]  # r = 4·|x|/5 = (2.4, 3.2, 0) rounds to 2 or 3, 3 or 4, 0
    array([ 2, -3,  0], dtype=int8)
    >>> q.decode(p, d=3)
    tensor([ 2.5000, -3.7500,  0.0000])
    """

    unbiased = True
    randomized = True

    def __init__(self, s: int = 16, bucket_size: int | None = None) -> None:
        self.s = check_int(s, "s", low=1, high=_S_MAX)
        self.bucket_size = None if bucket_size is None else check_int(bucket_size, "bucket_size", low=1)
        self.dtypes = {
            "levels": np.dtype(np.int8 if self.s <= 127 else np.int16),
            "norm": np.dtype(np.float32),
        }

    @property
    def params(self):
        return {"s": self.s, "bucket_size": self.bucket_size}

    def _bucket(self, d: int) -> int:
        return d if self.bucket_size is None else min(self.bucket_size, d)

    def _encode(self, x, *, seed, generator):
        b = self._bucket(x.numel())
        levels, norms = quantize(x, self.s, b, make_generator(seed, generator))
        return {
            "levels": levels.to(device="cpu", dtype=torch.int8 if self.s <= 127 else torch.int16).numpy(),
            "norm": norms.cpu().numpy(),
        }

    def _decode(self, fields, d, device):
        b = self._bucket(d)
        nb = -(-d // b)
        levels, norm = fields["levels"], fields["norm"]
        expect_length(levels, d, "qsgd payload['levels']")
        _check_norms(norm, nb, "qsgd payload['norm']")
        if np.abs(levels.astype(np.int32)).max() > self.s:
            raise PayloadError(f"qsgd payload['levels'] must lie in [-{self.s}, {self.s}]")
        lv = to_tensor(levels, device).to(torch.float32) / self.s
        n = to_tensor(norm, device).repeat_interleave(b)[:d]
        return n * lv

    def _delta(self, d):
        b = self._bucket(d)
        return 1.0 - min(b / self.s**2, math.sqrt(b) / self.s)


@register_compressor("bernoulli-qsgd")
class BernoulliQSGD(Compressor):
    """FED-CURE's QSGD: [Q(x)]_i = ‖x‖₂·sign(x_i)·Bernoulli(|x_i|/‖x‖₂). Unbiased, δ = 1 − √d.

    The same draws as ``QSGD(s=1)`` with the same seed (so the same Q(x)), but the ternary result
    travels packed: ``nonzero``, a bit-plane of the nonzero entries (ceil(d/8) bytes), ``negative``,
    one sign bit per nonzero entry in order (ceil(nnz/8) bytes), and ``norm`` (float32).
    E[nnz] = ‖x‖₁/‖x‖₂ <= √d.

    Examples
    --------
    >>> q = BernoulliQSGD()
    >>> x = torch.tensor([0.0, -3.0, 4.0])
    >>> torch.equal(q.compress(x, seed=1), QSGD(s=1).compress(x, seed=1))
    True
    """

    dtypes = {"nonzero": np.dtype(np.uint8), "negative": np.dtype(np.uint8), "norm": np.dtype(np.float32)}
    unbiased = True
    randomized = True

    def _encode(self, x, *, seed, generator):
        levels, norms = quantize(x, 1, x.numel(), make_generator(seed, generator))
        nonzero = levels != 0
        return {
            "nonzero": _bits.pack(nonzero),
            "negative": _bits.pack(levels[nonzero] < 0),
            "norm": norms.cpu().numpy(),
        }

    def _decode(self, fields, d, device):
        _check_norms(fields["norm"], 1, "bernoulli-qsgd payload['norm']")
        nonzero = _bits.unpack(fields["nonzero"], d, "bernoulli-qsgd payload['nonzero']")
        nnz = int(nonzero.sum())
        negative = _bits.unpack(fields["negative"], nnz, "bernoulli-qsgd payload['negative'] (one bit per nonzero)")
        levels = torch.zeros(d, dtype=torch.float32, device=device)
        levels[torch.from_numpy(nonzero).to(device)] = 1.0 - 2.0 * torch.from_numpy(negative).to(device, torch.float32)
        return to_tensor(fields["norm"], device) * levels

    def _delta(self, d):
        return 1.0 - math.sqrt(d)
