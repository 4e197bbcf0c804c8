"""Crafted colluding attacks: the f Byzantine rows as a function of the round's honest rows.

μ, σ: coordinate-wise mean and standard deviation of the h honest rows (:func:`honest_mean_std`,
σ with Bessel's correction); n = ``view.n`` replies in the round (honest + f Byzantine), f =
``view.f``. Each attack's docstring gives the paper's definition, the defaults the peers (ByzFL,
Blades, FLPoison) use and where fedrobust differs. The statistics are computed in float64 on the
honest rows' device and the rows cast back to their dtype.

================  ==========================================  ==========================
name              crafted row(s)                              parameters (default)
================  ==========================================  ==========================
``alie``          μ − z·σ                                     z (None: the paper's z_max)
``ipm``           −ε·μ                                        epsilon (0.1)
``fang``          per row, uniform draws beyond the honest    b > 1 (2)
                  max/min, against sign(μ)
``mimic``         a copy of one honest row                    target (0)
================  ==========================================  ==========================

``min-max`` and ``min-sum`` are in :mod:`fedrobust.attacks.minmax`, the adaptive
``optimal-alie`` and ``optimal-ipm`` in :mod:`fedrobust.attacks.optimal`.
"""

from __future__ import annotations

import math

import torch

from ._checks import check_int, check_positive, check_real
from .omniscient import AdversaryView, OmniscientAttack, honest_mean_std
from .registry import register_attack

__all__ = ["ALIE", "IPM", "Fang", "Mimic", "alie_z"]


def alie_z(n: int, f: int) -> float:
    """ALIE's z_max (Baruch et al., 2019): s = floor(n/2 + 1) − f, z = Φ⁻¹((n − s)/n).

    s is the number of honest workers the f Byzantine ones must sway to form a majority; Φ⁻¹ is the
    standard normal quantile (``torch.special.ndtri``). When f >= floor(n/2 + 1) the formula gives
    s <= 0 and Φ⁻¹(>= 1) = +∞: fedrobust clamps s to 1, i.e. z = Φ⁻¹((n − 1)/n), the largest value
    the formula takes with a finite s. The quantile's argument is also kept >= 1/2 (z >= 0), which
    only matters for the meaningless n = 1.

    Examples
    --------
    >>> round(alie_z(10, 2), 4), round(alie_z(10, 4), 4)
    (0.2533, 0.8416)
    >>> round(alie_z(10, 9), 4) == round(alie_z(10, 6), 4)  # s clamped to 1
    True
    """
    n = check_int(n, "n", low=1)
    f = check_int(f, "f", low=1, high=n)
    s = max(math.floor(n / 2 + 1) - f, 1)
    p = max((n - s) / n, 0.5)
    return float(torch.special.ndtri(torch.tensor(p, dtype=torch.float64)))


@register_attack("alie")
class ALIE(OmniscientAttack):
    """A little is enough (Baruch, Baruch and Goldberg, 2019, "A Little Is Enough: Circumventing
    Defenses For Distributed Learning", NeurIPS): every Byzantine worker sends b = μ − z·σ.

    The perturbation hides within the spread of the honest rows: z·σ per coordinate stays small
    enough that median-, Krum- and trimmed-mean-type rules keep (or lean towards) the crafted rows,
    yet it shifts every coordinate the same way.

    **Sign.** The paper's argument is symmetric: the defences accept anything in μ ± z·σ, and either
    side works. fedrobust sends the minus side, μ − z·σ, as the reference implementations of
    Karimireddy et al. (2022) and Blades do; ByzFL's ``ALittleIsEnough`` sends μ + τ·σ, so ByzFL's
    τ is fedrobust's −z (a negative ``z`` is accepted and gives the plus side).

    Parameters
    ----------
    z : float or None
        The multiple of σ. None (default): the paper's z_max from the round's n and f,
        :func:`alie_z` (z ≈ 0.25 for n = 10, f = 2; ≈ 0.84 for f = 4; with s clamped to 1 when the
        Byzantine workers would be a majority). ByzFL defaults to a fixed τ = 1.5 (fedrobust's
        z = −1.5); Blades and FLPoison compute the paper's z_max from n and f.

    Examples
    --------
    >>> honest = torch.tensor([[0.0, 1.0], [2.0, 1.0], [4.0, 4.0]])
    >>> ALIE(z=1.0).craft(honest, AdversaryView(n=5, f=2))
    tensor([[0.0000, 0.2679],
            [0.0000, 0.2679]])
    >>> round(ALIE().z_for(AdversaryView(n=10, f=2)), 4)
    0.2533
    """

    def __init__(self, z: float | None = None) -> None:
        self.z = None if z is None else check_real(z, "z")

    def z_for(self, view: AdversaryView) -> float:
        """The z used in a round: ``self.z``, or :func:`alie_z` of the view's n and f."""
        return alie_z(view.n, view.f) if self.z is None else self.z

    def _craft(self, honest: torch.Tensor, view: AdversaryView) -> torch.Tensor:
        mu, sigma = honest_mean_std(honest.to(torch.float64))
        return mu - self.z_for(view) * sigma


@register_attack("ipm")
class IPM(OmniscientAttack):
    """Inner-product manipulation (Xie, Koyejo and Gupta, 2019, "Fall of Empires: Breaking
    Byzantine-tolerant SGD by Inner Product Manipulation", UAI): every Byzantine worker sends
    b = −ε·μ.

    Parameters
    ----------
    epsilon : float
        ε > 0 (default 0.1). The paper's two regimes are ε = 0.1 (small: b stays close to the
        honest vectors and beats median-type rules) and ε = 100 (large: beats Krum-type rules);
        ByzFL's default (its ``tau``) is 2.

    Examples
    --------
    >>> honest = torch.tensor([[2.0, 0.0], [0.0, 4.0]])
    >>> IPM(epsilon=0.5).craft(honest, AdversaryView(n=3, f=1))
    tensor([[-0.5000, -1.0000]])
    """

    def __init__(self, epsilon: float = 0.1) -> None:
        self.epsilon = check_positive(epsilon, "epsilon")

    def _craft(self, honest: torch.Tensor, view: AdversaryView) -> torch.Tensor:
        mu, _ = honest_mean_std(honest.to(torch.float64))
        return -self.epsilon * mu


def fang_bounds(honest: torch.Tensor, b: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per coordinate, the interval [lo, hi] Fang's full-knowledge attack samples from (float64).

    With s = sign(μ) and the honest max_j, min_j: where s_j = −1 (push up) the interval is
    [max_j, b·max_j] if max_j > 0 else [max_j, max_j/b]; elsewhere (s_j = +1, and μ_j = 0) it is
    [min_j/b, min_j] if min_j > 0 else [b·min_j, min_j].

    Examples
    --------
    >>> lo, hi = fang_bounds(torch.tensor([[1.0, -1.0], [3.0, -4.0]]), 2.0)
    >>> lo.tolist(), hi.tolist()
    ([0.5, -1.0], [1.0, -0.5])
    """
    x = honest.to(torch.float64)
    mu = x.mean(dim=0)
    top, bottom = x.max(dim=0).values, x.min(dim=0).values
    up_lo, up_hi = top, torch.where(top > 0, top * b, top / b)
    down_lo, down_hi = torch.where(bottom > 0, bottom / b, bottom * b), bottom
    up = mu < 0
    return torch.where(up, up_lo, down_lo), torch.where(up, up_hi, down_hi)


@register_attack("fang")
class Fang(OmniscientAttack):
    """Fang et al.'s full-knowledge attack on coordinate-wise median and trimmed mean (Fang, Cao,
    Jia and Gong, 2020, "Local Model Poisoning Attacks to Byzantine-Robust Federated Learning",
    USENIX Security).

    The paper works on local models: s_j is the sign of the change of the j-th global parameter
    without attack, and the crafted models push it the other way. Where s_j = −1 (the parameter
    would decrease) each crafted j-th value is drawn uniformly in [max_j, b·max_j] if max_j > 0,
    else in [max_j, max_j/b]; where s_j = +1 in [min_j/b, min_j] if min_j > 0, else in
    [b·min_j, min_j] (max_j, min_j over the honest values), so every crafted value lies beyond the
    honest extreme on the side against the change.

    fedrobust's rows are whatever the server aggregates (model differences, gradients, decoded
    payloads), so it takes s = sign(μ) of the honest rows: for model differences that is the
    paper's s; for gradients (applied with a minus sign) it is the same rule, the crafted values
    oppose the honest direction. Coordinates with μ_j = 0 are treated as s_j = +1.

    Each of the f Byzantine rows draws its own values from ``view.generator`` (drawn on the
    generator's device in float32, float64 for float64 rows, then moved), so a seeded generator
    in the same state gives the same rows on CPU and CUDA.

    Parameters
    ----------
    b : float
        The stretch factor b > 1 (default 2, the paper's).

    Examples
    --------
    >>> honest = torch.tensor([[1.0, -1.0], [3.0, -4.0]])
    >>> rows = Fang().craft(honest, AdversaryView(n=4, f=2, generator=torch.Generator().manual_seed(0)))
    >>> rows.shape, bool(((rows[:, 0] >= 0.5) & (rows[:, 0] <= 1.0)).all())
    (torch.Size([2, 2]), True)
    >>> bool(((rows[:, 1] >= -1.0) & (rows[:, 1] <= -0.5)).all())
    True
    """

    def __init__(self, b: float = 2.0) -> None:
        self.b = check_real(b, "b")
        if not self.b > 1.0:
            raise ValueError(f"b must be a finite number > 1, got {b!r}")

    def _craft(self, honest: torch.Tensor, view: AdversaryView) -> torch.Tensor:
        lo, hi = fang_bounds(honest, self.b)
        work = torch.float64 if honest.dtype == torch.float64 else torch.float32
        gen = view.generator
        where = gen.device if gen is not None else honest.device
        u = torch.rand((view.f, honest.shape[1]), generator=gen, dtype=work, device=where)
        u = u.to(device=honest.device, dtype=torch.float64)
        return lo + u * (hi - lo)


@register_attack("mimic")
class Mimic(OmniscientAttack):
    """Mimic (Karimireddy, He and Jaggi, 2022, "Byzantine-Robust Learning on Heterogeneous
    Datasets via Bucketing", ICLR): every Byzantine worker sends the vector of one honest worker.

    Under heterogeneous data this over-weights one client's data and so biases robust rules
    without ever sending an outlier. The paper chooses the mimicked worker with a heuristic: the
    honest worker with the largest projection on the direction of maximal variance of the honest
    vectors, estimated over the first rounds (state carried across rounds). fedrobust ships the
    fixed-target variant only, as ByzFL does (``Mimic(epsilon=0)``): the attack stays a pure
    function of the round's rows.

    Parameters
    ----------
    target : int
        Which honest row of the round to copy (default 0, ByzFL's default), counted modulo the
        number h of honest rows seen, so partial participation never makes it out of range
        (ByzFL raises instead).

    Examples
    --------
    >>> honest = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> Mimic(target=1).craft(honest, AdversaryView(n=4, f=2))
    tensor([[3., 4.],
            [3., 4.]])
    """

    def __init__(self, target: int = 0) -> None:
        self.target = check_int(target, "target", low=0)

    def _craft(self, honest: torch.Tensor, view: AdversaryView) -> torch.Tensor:
        return honest[self.target % honest.shape[0]].clone()
