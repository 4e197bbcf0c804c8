"""The gradient protocol on the server: clients send one minibatch gradient, the server steps.

Each round every sampled client returns g_i, a stochastic gradient at the current model x; the
server stacks them into G (n, d), computes ``agg = aggregate(G)`` with a pure function of
:mod:`fedrobust.aggregators` and steps ``x ← x − lr · agg``. Subclasses pick ``aggregate``
(mean-SGD: the mean; later the geometric median, coordinate median, Krum, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
from flwr.common import Scalar

from .base import VectorStrategy

__all__ = ["GradientStrategy"]


class GradientStrategy(VectorStrategy):
    """``x ← x − lr · aggregate(G)`` over the stacked client gradients G (see module docstring)."""

    protocol: ClassVar[str] = "gradient"
    no_pre_aggregation: ClassVar[str] = ""
    aggregate: ClassVar[Callable[[torch.Tensor], torch.Tensor]]

    def step(self, updates: torch.Tensor, weights: torch.Tensor) -> dict[str, Scalar] | None:
        """Apply ``x ← x − lr · aggregate(updates)``; ``weights`` are ignored (one batch each)."""
        self.x.sub_(self.aggregate(updates), alpha=self.lr)
        return None

    def aggregate_preview(self, rows: torch.Tensor, partitions: list[int], metrics: list[dict[str, Scalar]]) -> torch.Tensor:
        """``aggregate(rows)`` on a copy of the rows."""
        return self.aggregate(rows.clone())
