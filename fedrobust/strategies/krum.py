"""Krum and multi-Krum on the gradient protocol: ``x ← x − lr · Krum_f,m(G)``.

From Blanchard, El Mhamdi, Guerraoui and Stainer (2017), "Machine Learning with Adversaries: Byzantine
Tolerant Gradient Descent" (NeurIPS).

``f`` is ``krum-f``, or with ``krum-f = -1`` the number of Byzantine clients expected among the
sampled ones, ``floor(byzantine-fraction · clients-per-round)``. Krum needs ``2f + 2 < n``: when a
round has too few accepted replies for that (rejections, or ψ = 0.4 of 10 clients), ``f`` is
lowered to the largest valid value and the round records the ``krum_f`` it used. ``m = krum-m``
rows are averaged (1: Krum), at most ``n − f``.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from flwr.common import Scalar

from ..aggregators import krum
from ..attacks import num_byzantine
from .gradient import GradientStrategy

__all__ = ["Krum", "krum_f"]


def krum_f(requested: int, byzantine_fraction: float, clients_per_round: int, n: int) -> int:
    """The ``f`` Krum uses for ``n`` rows: ``requested`` (or the expected Byzantine count when it is
    -1), capped so that ``2f + 2 < n``.

    Examples
    --------
    >>> krum_f(-1, 0.2, 10, 10), krum_f(-1, 0.4, 10, 10), krum_f(1, 0.4, 10, 10)
    (2, 3, 1)
    """
    f = num_byzantine(clients_per_round, byzantine_fraction) if requested < 0 else requested
    return max(0, min(f, (n - 3) // 2))


class Krum(GradientStrategy):
    """``x ← x − lr · krum(G, f, m)``; records the ``krum_f`` used each round."""

    name: ClassVar[str] = "krum"

    def step(self, updates: torch.Tensor, weights: torch.Tensor) -> dict[str, Scalar] | None:
        """Krum (or multi-Krum) of the rows, then the SGD step."""
        n = updates.shape[0]
        c = self.cfg
        if n < 3:  # Krum is undefined; the (one or two) rows are averaged
            self.x.sub_(updates.mean(dim=0), alpha=self.lr)
            return {"krum_f": 0}
        f = krum_f(c.krum_f, c.byzantine_fraction, c.clients_per_round, n)
        self.x.sub_(krum(updates, f, min(c.krum_m, n - f)), alpha=self.lr)
        return {"krum_f": f}
