"""Sign compressors: ``sign`` (plain sign) and ``scaled-sign`` (ℓ1-QSGD, (‖x‖₁/d)·sign(x)).

Wire format (both): ``negative``, one bit per entry (1 where x_i < 0), packed with ``np.packbits``
into ceil(d/8) bytes; ``zero``, a second packed bit-plane (1 where x_i == 0) that is sent only when x
has an exact zero and is empty (0 bytes) otherwise. So sign(0) = 0 is kept exactly, and the usual
cost is ceil(d/8) bytes (2·ceil(d/8) when x contains a zero).
"""

from __future__ import annotations

import numpy as np
import torch

from . import _bits
from ._checks import work_dtype
from .base import Compressor
from .payload import expect_finite, expect_length
from .registry import register_compressor

__all__ = ["Sign", "ScaledSign"]


def _encode_signs(x: torch.Tensor, magnitude: torch.Tensor | None = None) -> dict[str, np.ndarray]:
    """The two bit-planes of ``x``; ``magnitude`` is ``|x|`` when the caller has it already."""
    magnitude = x.abs() if magnitude is None else magnitude
    has_zero = bool(magnitude.amin() == 0)  # one reduction; the zero plane is built only when needed
    return {
        "negative": _bits.pack(x < 0),
        "zero": _bits.pack(x == 0) if has_zero else np.zeros(0, dtype=np.uint8),
    }


def _decode_signs(
    fields: dict[str, np.ndarray], d: int, device: torch.device, what: str, scale: float = 1.0
) -> torch.Tensor:
    """float32 vector of +scale / -scale / 0 from the two bit-planes.

    ``negative · (−2·scale) + scale`` in place on the unpacked 0/1 bytes: exact (doubling a float32
    and subtracting it back are exact), and a few vectorised passes instead of a select.
    """
    negative = _bits.unpack(fields["negative"], d, f"{what} payload['negative']", as_bool=False)
    sign = torch.from_numpy(negative).to(device=device, dtype=torch.float32)
    sign.mul_(-2.0 * scale).add_(scale)
    if fields["zero"].shape[0]:
        zero = _bits.unpack(fields["zero"], d, f"{what} payload['zero'] (empty or a full bit-plane)")
        sign[torch.from_numpy(zero).to(device)] = 0.0
    return sign


@register_compressor("sign")
class Sign(Compressor):
    """Q(x) = sign(x) (entries +1, -1, and 0 where x_i = 0). Biased, deterministic.

    No δ exists: ‖sign(x) − x‖² / ‖x‖² is unbounded as x → 0, so ``delta`` returns ``-inf``.
    Payload: ``negative`` and ``zero`` bit-planes (see the module docstring), ceil(d/8) bytes when x
    has no exact zero.

    Examples
    --------
    >>> q = Sign()
    >>> p = q.encode(torch.tensor([0.5, -2.0, 3.0]))
    >>> p
    {'negative': array([64], dtype=uint8), 'zero': array([], dtype=uint8)}
    >>> q.decode(p, d=3)
    tensor([ 1., -1.,  1.])
    >>> q.compress(torch.tensor([0.5, 0.0, -3.0]))
    tensor([ 1.,  0., -1.])
    """

    dtypes = {"negative": np.dtype(np.uint8), "zero": np.dtype(np.uint8)}
    finite_by_construction = True  # entries are ±1 or 0

    def _encode(self, x, *, seed, generator):
        return _encode_signs(x)

    def _decode(self, fields, d, device):
        return _decode_signs(fields, d, device, "sign")

    def _delta(self, d):
        return float("-inf")


@register_compressor("scaled-sign")
class ScaledSign(Compressor):
    """ℓ1-QSGD: Q(x) = (‖x‖₁/d)·sign(x). Biased, deterministic.

    ‖Q(x) − x‖² <= (1 − ‖x‖₁²/(d‖x‖²))‖x‖², so the worst case over x is δ = 1/d (Ghosh, Maity, Kadhe, Mazumdar
    and Ramchandran (2021), "Communication-Efficient and Byzantine-Robust Distributed Learning with Error
    Feedback", §3). Payload: the ``negative`` / ``zero`` bit-planes of :class:`Sign` plus ``scale`` = ‖x‖₁/d
    as one float32: ceil(d/8) + 4 bytes when x has no exact zero.

    Examples
    --------
    >>> q = ScaledSign()
    >>> q.compress(torch.tensor([1.0, -2.0, 3.0, -6.0]))
    tensor([ 3., -3.,  3., -3.])
    """

    dtypes = {"negative": np.dtype(np.uint8), "zero": np.dtype(np.uint8), "scale": np.dtype(np.float32)}
    finite_by_construction = True  # ±scale or 0, with the scale checked finite

    def _encode(self, x, *, seed, generator):
        magnitude = x.to(work_dtype(x)).abs()
        payload = _encode_signs(x, magnitude)
        scale = magnitude.sum() / x.numel()
        payload["scale"] = np.array([scale.item()], dtype=np.float32)
        if not np.isfinite(payload["scale"]).all():
            raise ValueError("x is too large for scaled-sign: its scale ||x||_1/d overflows float32")
        return payload

    def _decode(self, fields, d, device):
        scale = fields["scale"]
        expect_length(scale, 1, "scaled-sign payload['scale']")
        expect_finite(scale, "scaled-sign payload['scale']", nonnegative=True)
        return _decode_signs(fields, d, device, "scaled-sign", scale=float(scale[0]))

    def _delta(self, d):
        return 1.0 / d


