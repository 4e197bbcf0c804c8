"""mean-SGD: synchronous minibatch SGD, the server averages one gradient per client (not robust)."""

from __future__ import annotations

from typing import ClassVar

from ..aggregators import mean
from .gradient import GradientStrategy

__all__ = ["MeanSGD"]


class MeanSGD(GradientStrategy):
    """``x ← x − lr · mean(G)``: the non-robust baseline of the gradient protocol."""

    name: ClassVar[str] = "mean-sgd"
    aggregate = staticmethod(mean)
