"""Adaptive ALIE and IPM: each round, the attack parameter τ that moves the server's aggregate most.

The idea of ByzFL's ``Optimal_ALittleIsEnough`` and ``Optimal_InnerProductManipulation``: the
adversary knows the server's rule, so instead of a fixed τ (z for ALIE, ε for IPM) it picks, each
round, the τ maximising

    J(τ) = ‖aggregate(honest ∪ f copies of b(τ)) − μ‖,

the distance between the server's aggregate (``view.aggregate``, one server aggregation per
evaluation) and the honest mean μ.

**The search** (deterministic, a pure function of the round's inputs, nothing recorded):

1. a coarse grid of ``grid`` log-spaced values of τ over [``low``, ``high``] (default 13 values
   over [0.01, 100], a factor 10^(1/3) ≈ 2.15 apart, ends included);
2. a golden-section refinement, in log τ, of the bracket formed by the best grid value's two
   neighbours (one neighbour at an end of the grid), with ``refine`` more evaluations (default
   24). On ties it keeps the lower half, so a J that rises and then drops (Krum-type rules, which
   stop selecting b beyond some τ) is followed to its peak.

At most ``grid + refine`` aggregations (37 by default). The result is the best τ evaluated (the
smallest one on ties). The bracket shrinks by 0.618 per refinement step: with the defaults, τ is
located to within a relative 2.4·10⁻⁵ of the best value inside the bracket. An objective that
keeps growing (the plain mean, unbounded in τ) ends at ``high``; an aggregate that is not finite
counts as J = −∞.

ByzFL searches differently: from τ = 0 it steps up by 10, doubling the step while J grows, then
tries smaller and smaller steps (ratio 0.8) beyond the best τ, 20 evaluations in all, and applies
its ``Clipping`` pre-aggregation before the rule by default. Its range is unbounded above (with a
mean aggregate its τ ends near 10·2¹⁹), and its ALIE τ multiplies +σ (fedrobust's z multiplies −σ,
see :class:`~fedrobust.attacks.ALIE`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ._checks import check_int, check_positive
from .omniscient import AdversaryView, OmniscientAttack, honest_mean_std, repeat_row
from .registry import register_attack

__all__ = ["OptimalALIE", "OptimalIPM", "line_search"]

_INV_PHI = (math.sqrt(5.0) - 1.0) / 2.0


def line_search(
    objective: Callable[[float], float], low: float, high: float, grid: int, refine: int
) -> tuple[float, float]:
    """(τ, J(τ)) of the best τ in [low, high]: a log-spaced grid, then golden-section refinement.

    Evaluates ``objective`` at most ``grid + refine`` times; see :mod:`fedrobust.attacks.optimal`.

    Examples
    --------
    >>> tau, value = line_search(lambda t: -abs(math.log(t / 3.0)), 0.01, 100.0, 13, 24)
    >>> abs(tau / 3.0 - 1) < 1e-4
    True
    """
    seen: dict[float, float] = {}

    def at_tau(tau: float) -> float:
        if tau not in seen:
            value = float(objective(tau))
            seen[tau] = value if math.isfinite(value) else -math.inf
        return seen[tau]

    def at(u: float) -> float:
        return at_tau(math.exp(u))

    taus = [low * (high / low) ** (k / (grid - 1)) for k in range(grid)]
    taus[0], taus[-1] = low, high
    values = [at_tau(t) for t in taus]
    us = [math.log(t) for t in taus]
    k = max(range(grid), key=lambda i: (values[i], -i))
    a, b = us[max(k - 1, 0)], us[min(k + 1, grid - 1)]
    left = refine
    if left >= 2:
        c, d = b - _INV_PHI * (b - a), a + _INV_PHI * (b - a)
        fc, fd = at(c), at(d)
        left -= 2
        while left > 0:
            if fc >= fd:
                b, d, fd = d, c, fc
                c = b - _INV_PHI * (b - a)
                fc = at(c)
            else:
                a, c, fc = c, d, fd
                d = a + _INV_PHI * (b - a)
                fd = at(d)
            left -= 1
    elif left == 1:
        at(0.5 * (a + b))
    best = max(seen.items(), key=lambda item: (item[1], -item[0]))
    return best


class _Optimal(OmniscientAttack):
    """Picks τ each round by :func:`line_search` on J(τ) = ‖aggregate(honest ∪ f·b(τ)) − μ‖."""

    needs_aggregate = True

    def __init__(self, low: float = 0.01, high: float = 100.0, grid: int = 13, refine: int = 24) -> None:
        self.low = check_positive(low, "low")
        self.high = check_positive(high, "high")
        if not self.high > self.low:
            raise ValueError(f"high must be > low, got low={low!r}, high={high!r}")
        self.grid = check_int(grid, "grid", low=2)
        self.refine = check_int(refine, "refine", low=0)

    def _row(self, mu: torch.Tensor, sigma: torch.Tensor, tau: float) -> torch.Tensor:
        raise NotImplementedError

    def search(self, honest: torch.Tensor, view: AdversaryView) -> tuple[float, float]:
        """(τ, J(τ)): the parameter this attack uses on the round, and the distance it achieves."""
        if view.aggregate is None:
            raise ValueError(f"attack {self.name!r} needs the server's aggregate (view.aggregate), which is None")
        mu, sigma = honest_mean_std(honest.detach().to(torch.float64))

        def objective(tau: float) -> float:
            b = self._row(mu, sigma, tau).to(honest.dtype)
            rows = torch.cat([honest, repeat_row(b, view.f)], dim=0)
            out = view.aggregate(rows).to(device=mu.device, dtype=torch.float64).reshape(-1)
            return float(torch.linalg.vector_norm(out - mu))

        return line_search(objective, self.low, self.high, self.grid, self.refine)

    def _craft(self, honest: torch.Tensor, view: AdversaryView) -> torch.Tensor:
        tau, _ = self.search(honest, view)
        mu, sigma = honest_mean_std(honest.to(torch.float64))
        return self._row(mu, sigma, tau)


@register_attack("optimal-alie")
class OptimalALIE(_Optimal):
    """ALIE (Baruch, Baruch and Goldberg, 2019, "A Little Is Enough: Circumventing Defenses For
    Distributed Learning", NeurIPS) with z chosen each round against the server's rule: b = μ − z·σ
    with z from :func:`line_search` over [low, high] (ByzFL's ``Optimal_ALittleIsEnough`` idea).

    Parameters
    ----------
    low, high : float
        The range of z searched, 0 < low < high (default [0.01, 100]).
    grid : int
        Log-spaced coarse values, >= 2 (default 13).
    refine : int
        Golden-section evaluations after the grid, >= 0 (default 24).

    Examples
    --------
    >>> honest = torch.tensor([[0.0, 1.0], [2.0, 1.0], [4.0, 4.0]])
    >>> view = AdversaryView(n=5, f=2, aggregate=lambda rows: rows.mean(dim=0))
    >>> z, _ = OptimalALIE().search(honest, view)  # the mean: J grows with z, so z = high
    >>> z
    100.0
    """

    def _row(self, mu, sigma, tau):
        return mu - tau * sigma


@register_attack("optimal-ipm")
class OptimalIPM(_Optimal):
    """IPM (Xie, Koyejo and Gupta, 2019, "Fall of Empires: Breaking Byzantine-tolerant SGD by
    Inner Product Manipulation", UAI) with ε chosen each round against the server's rule:
    b = −ε·μ with ε from :func:`line_search` over [low, high] (ByzFL's
    ``Optimal_InnerProductManipulation`` idea).

    Parameters as :class:`OptimalALIE` (the range is that of ε, default [0.01, 100]: the paper's
    two regimes, 0.1 and 100, lie inside).

    Examples
    --------
    >>> honest = torch.tensor([[1.0, 1.0], [2.0, 3.0], [3.0, 2.0]])
    >>> view = AdversaryView(n=5, f=2, aggregate=lambda rows: rows.median(dim=0).values)
    >>> eps, distance = OptimalIPM().search(honest, view)
    >>> round(distance, 4)  # the median drops to the lowest honest value: ‖(1, 1) − (2, 2)‖
    1.4142
    """

    def _row(self, mu, sigma, tau):
        return -tau * mu
