"""Coordinate-wise trimmed mean on the gradient protocol: ``x ← x − lr · TM_beta(G)``.

``beta`` (the run key) is the fraction trimmed from *each* side of every coordinate, so it must
lie in [0, 0.5) here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from ..aggregators import trimmed_mean
from ..config import RunConfig
from .gradient import GradientStrategy

__all__ = ["TrimmedMean"]


class TrimmedMean(GradientStrategy):
    """``x ← x − lr · trimmed_mean(G, beta)``.

    From Yin, Chen, Ramchandran and Bartlett (2018), "Byzantine-Robust Distributed Learning: Towards Optimal
    Statistical Rates" (ICML).

    Raises
    ------
    ValueError
        If ``beta`` is not in [0, 0.5).
    """

    name: ClassVar[str] = "trimmed-mean"

    def __init__(self, cfg: RunConfig, x0: torch.Tensor, shapes: Sequence[tuple[int, ...]], **kwargs: Any) -> None:
        super().__init__(cfg, x0, shapes, **kwargs)
        if not 0.0 <= cfg.beta < 0.5:
            raise ValueError(f"beta must lie in [0, 0.5) for trimmed-mean (trimmed from each side), got {cfg.beta}")

    def aggregate(self, updates: torch.Tensor) -> torch.Tensor:
        """The coordinate-wise trimmed mean with the run's ``beta``."""
        return trimmed_mean(updates, self.cfg.beta)
