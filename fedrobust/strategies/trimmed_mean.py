"""Coordinate-wise trimmed mean on the gradient protocol: ``x ← x − lr · TM_beta(G)``.

``beta`` (the run key) is the fraction trimmed from *each* side of every coordinate, so it must
lie in [0, 0.5) here.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from ..aggregators import trimmed_mean
from ..config import RunConfig
from .gradient import GradientStrategy

__all__ = ["TrimmedMean"]


class TrimmedMean(GradientStrategy):
    """``x ← x − lr · trimmed_mean(G, beta)`` (Yin et al., 2018).

    Raises
    ------
    ConfigError
        If ``beta`` is not in [0, 0.5) (:meth:`config_problems`).
    """

    name: ClassVar[str] = "trimmed-mean"
    trims: ClassVar[str] = "values"

    @classmethod
    def config_problems(cls, cfg: RunConfig) -> list[str]:
        """``beta`` must lie in [0, 0.5): it is trimmed from each side."""
        if 0.0 <= cfg.beta < 0.5:
            return []
        return [f"beta must lie in [0, 0.5) for trimmed-mean (trimmed from each side), got {cfg.beta}"]

    def aggregate(self, updates: torch.Tensor) -> torch.Tensor:
        """The coordinate-wise trimmed mean with the run's ``beta``."""
        return trimmed_mean(updates, self.cfg.beta)
