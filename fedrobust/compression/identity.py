"""``identity``: no compression; the float32 vector itself travels (4·d bytes)."""

from __future__ import annotations

import numpy as np
import torch

from .base import Compressor, to_tensor
from .payload import expect_finite, expect_length
from .registry import register_compressor

__all__ = ["Identity"]


@register_compressor("identity")
class Identity(Compressor):
    """Q(x) = x (cast to float32). δ = 1, unbiased.

    Payload: ``values`` float32 (d,).

    Examples
    --------
    >>> q = Identity()
    >>> p = q.encode(torch.tensor([1.5, -2.0]))
    >>> p
    {'values': array([ 1.5, -2. ], dtype=float32)}
    >>> q.decode(p, d=2)
    tensor([ 1.5000, -2.0000])
    """

    dtypes = {"values": np.dtype(np.float32)}
    unbiased = True

    def _encode(self, x, *, seed, generator):
        return {"values": x.to(device="cpu", dtype=torch.float32).numpy().copy()}

    def _decode(self, fields, d, device):
        values = fields["values"]
        expect_length(values, d, "identity payload['values']")
        expect_finite(values, "identity payload['values']")
        return to_tensor(values, device)

    def _delta(self, d):
        return 1.0
