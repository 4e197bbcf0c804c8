"""Min-max and min-sum (Shejwalkar and Houmansadr, 2021, "Manipulating the Byzantine: Optimizing
Model Poisoning Attacks and Defenses for Federated Learning", NDSS).

Every Byzantine worker sends b = μ + γ·p: the honest mean μ moved along a perturbation p as far
(the largest γ >= 0) as a distance constraint over the honest rows g_1..g_h allows:

- ``min-max``: max_i ‖b − g_i‖ <= max_{i,j} ‖g_i − g_j‖ (b is no farther from any honest row
  than the two farthest honest rows are from each other);
- ``min-sum``: Σ_i ‖b − g_i‖² <= max_j Σ_i ‖g_j − g_i‖² (b's sum of squared distances is no
  larger than the largest honest one).

The perturbation (``direction``): ``unit`` −μ/‖μ‖, ``std`` −σ, ``sign`` −sign(μ).

**The search for γ.** As in the paper, γ is found by bisection on the constraint, which holds at
γ = 0 and, for γ >= 0, on an interval [0, γ*] (the constrained quantity is convex in γ). The
paper starts at γ_init = 10 and halves the step each iteration (so it never leaves (0, 15));
Blades and FLPoison also start at 10, with a stop threshold of 1e-5. fedrobust starts at
``gamma_init`` = 10 too, then brackets γ* by doubling (while the constraint holds) or halving
(while it fails), at most 64 times, and bisects the bracket until it is narrower than ``tol``
times its lower end (at most 64 more steps). The returned γ satisfies the constraint and
γ·(1 + tol) violates it, whatever the scale of the rows. Each step is O(h): the squared distances
‖μ + γp − g_i‖² = ‖μ − g_i‖² + 2γ⟨μ − g_i, p⟩ + γ²‖p‖² come from inner products formed once in
float64, and the honest pairwise distances from ``torch.cdist`` in float64 without the Gram
shortcut. When p = 0 (μ = 0 for ``unit``/``sign``, σ = 0 for ``std``) or the honest rows all
coincide, γ = 0 and b = μ.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ._checks import check_positive, check_open_unit
from .omniscient import AdversaryView, OmniscientAttack, honest_mean_std
from .registry import register_attack

__all__ = ["MinMax", "MinSum", "DIRECTIONS", "perturbation", "largest_gamma"]

DIRECTIONS = ("unit", "std", "sign")
"""The perturbations p: ``unit`` (−μ/‖μ‖), ``std`` (−σ), ``sign`` (−sign(μ))."""

_BRACKET_STEPS = 64
_BISECTION_STEPS = 64


def perturbation(honest: torch.Tensor, direction: str) -> tuple[torch.Tensor, torch.Tensor]:
    """μ and the perturbation p of the honest rows, both float64 on their device.

    Examples
    --------
    >>> mu, p = perturbation(torch.tensor([[3.0, 0.0], [3.0, 8.0]]), "unit")
    >>> p
    tensor([-0.6000, -0.8000], dtype=torch.float64)
    """
    mu, sigma = honest_mean_std(honest.to(torch.float64))
    if direction == "unit":
        norm = torch.linalg.vector_norm(mu)
        p = -mu / norm if float(norm) > 0 else torch.zeros_like(mu)
    elif direction == "std":
        p = -sigma
    elif direction == "sign":
        p = -torch.sign(mu)
    else:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    return mu, p


def largest_gamma(holds: Callable[[float], bool], gamma_init: float = 10.0, tol: float = 1e-5) -> float:
    """The largest γ >= 0 with ``holds(γ)``, for a constraint that holds exactly on [0, γ*].

    Brackets γ* from ``gamma_init`` by doubling or halving (at most 64 times), then bisects until
    the bracket [lo, hi] has hi − lo <= tol·lo (at most 64 steps); returns lo, so lo·(1 + tol)
    >= hi fails the constraint (0.0 when no
    γ >= gamma_init·2⁻⁶⁴ holds).

    Examples
    --------
    >>> g = largest_gamma(lambda g: g <= 3.0)
    >>> g <= 3.0 < g * (1 + 1e-5)
    True
    """
    if holds(gamma_init):
        lo, hi = gamma_init, 2.0 * gamma_init
        for _ in range(_BRACKET_STEPS):
            if not holds(hi):
                break
            lo, hi = hi, 2.0 * hi
        else:
            return lo
    else:
        lo, hi = gamma_init / 2.0, gamma_init
        for _ in range(_BRACKET_STEPS):
            if holds(lo):
                break
            lo, hi = lo / 2.0, lo
        else:
            return 0.0
    for _ in range(_BISECTION_STEPS):
        if hi - lo <= tol * lo:
            break
        mid = 0.5 * (lo + hi)
        if holds(mid):
            lo = mid
        else:
            hi = mid
    return lo


class _DistanceBounded(OmniscientAttack):
    """b = μ + γ·p with the largest γ keeping a distance statistic within the honest ones' bound."""

    def __init__(self, direction: str = "std", gamma_init: float = 10.0, tol: float = 1e-5) -> None:
        if not isinstance(direction, str) or direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
        self.direction = direction
        self.gamma_init = check_positive(gamma_init, "gamma_init")
        self.tol = check_open_unit(tol, "tol")

    def _constraint(self, x: torch.Tensor, mu: torch.Tensor, p: torch.Tensor) -> Callable[[float], bool]:
        raise NotImplementedError

    def gamma(self, honest: torch.Tensor) -> float:
        """The γ this attack uses on the (h, L) honest rows (0.0 when p = 0 or the rows coincide)."""
        x = honest.detach().to(torch.float64)
        mu, p = perturbation(x, self.direction)
        if not float(torch.linalg.vector_norm(p)) > 0:
            return 0.0
        holds = self._constraint(x, mu, p)
        return largest_gamma(holds, self.gamma_init, self.tol)

    def _craft(self, honest: torch.Tensor, view: AdversaryView) -> torch.Tensor:
        mu, p = perturbation(honest, self.direction)
        return mu + self.gamma(honest) * p


def _pieces(x: torch.Tensor, mu: torch.Tensor, p: torch.Tensor):
    """‖μ − g_i‖², ⟨μ − g_i, p⟩, ‖p‖² and the honest squared pairwise distances, float64."""
    d = mu[None, :] - x
    pair = torch.cdist(x[None], x[None], compute_mode="donot_use_mm_for_euclid_dist")[0] ** 2
    return (d * d).sum(dim=1), d @ p, float((p * p).sum()), pair


@register_attack("min-max")
class MinMax(_DistanceBounded):
    """Min-max (Shejwalkar and Houmansadr, 2021, "Manipulating the Byzantine: Optimizing Model
    Poisoning Attacks and Defenses for Federated Learning", NDSS): b = μ + γ·p with the largest γ
    such that max_i ‖b − g_i‖ <= max_{i,j} ‖g_i − g_j‖ over the honest rows g_i.

    See :mod:`fedrobust.attacks.minmax` for the search and the degenerate cases.

    Parameters
    ----------
    direction : str
        The perturbation p: ``unit`` (−μ/‖μ‖), ``std`` (−σ, default) or ``sign`` (−sign(μ)).
        ``std`` is Blades' default; the paper evaluates all three, and the authors' code and
        FLPoison offer all three.
    gamma_init : float
        Where the search for γ starts (default 10, the paper's γ_init).
    tol : float
        Relative precision of γ, in (0, 1) (default 1e-5, the paper's stop threshold, there
        absolute).

    Examples
    --------
    >>> honest = torch.tensor([[0.0, 0.0], [2.0, 0.0], [1.0, 3.0]])
    >>> attack = MinMax(direction="unit")
    >>> round(attack.gamma(honest), 4)  # γ* = √2 here
    1.4142
    >>> attack.craft(honest, AdversaryView(n=5, f=2)).shape
    torch.Size([2, 2])
    """

    def _constraint(self, x, mu, p):
        d2, a, pp, pair = _pieces(x, mu, p)
        bound = float(pair.max())
        return lambda g: float((d2 + 2.0 * g * a + g * g * pp).max()) <= bound


@register_attack("min-sum")
class MinSum(_DistanceBounded):
    """Min-sum (Shejwalkar and Houmansadr, 2021, "Manipulating the Byzantine: Optimizing Model
    Poisoning Attacks and Defenses for Federated Learning", NDSS): b = μ + γ·p with the largest γ
    such that Σ_i ‖b − g_i‖² <= max_j Σ_i ‖g_j − g_i‖² over the honest rows g_i.

    Parameters and the search as :class:`MinMax` (default ``direction`` ``std``).

    Examples
    --------
    >>> honest = torch.tensor([[0.0, 0.0], [2.0, 0.0], [1.0, 3.0]])
    >>> round(MinSum(direction="unit").gamma(honest), 4)  # γ* = 2 here
    2.0
    """

    def _constraint(self, x, mu, p):
        d2, a, pp, pair = _pieces(x, mu, p)
        h = x.shape[0]
        s0, s1 = float(d2.sum()), float(a.sum())
        bound = float(pair.sum(dim=1).max())
        return lambda g: s0 + 2.0 * g * s1 + h * g * g * pp <= bound
