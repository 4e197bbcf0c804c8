"""CMD: coordinate-wise median descent on the gradient protocol, ``x ← x − lr · CM(G)``."""

from __future__ import annotations

from typing import ClassVar

from ..aggregators import coordinate_median
from .gradient import GradientStrategy

__all__ = ["CMD"]


class CMD(GradientStrategy):
    """``x ← x − lr · coordinate_median(G)``.

    From Yin, Chen, Ramchandran and Bartlett (2018), "Byzantine-Robust Distributed Learning: Towards Optimal
    Statistical Rates" (ICML).
    """

    name: ClassVar[str] = "cmd"
    aggregate = staticmethod(coordinate_median)
