"""Crafted colluding attacks: the f Byzantine rows as a function of the round's honest rows.

μ, σ: coordinate-wise mean and standard deviation of the h honest rows (:func:`honest_mean_std`);
n = h + f replies in the round. Each attack's docstring gives the paper's definition, the defaults
the peers use and where fedrobust differs.
"""

from __future__ import annotations

import torch

from ._checks import check_positive
from .omniscient import AdversaryView, OmniscientAttack, honest_mean_std
from .registry import register_attack

__all__ = ["IPM"]


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
        ByzFL's default is 2.

    Examples
    --------
    >>> honest = torch.tensor([[2.0, 0.0], [0.0, 4.0]])
    >>> IPM(epsilon=0.5).craft(honest, AdversaryView(n=3, f=1))
    tensor([[-0.5000, -1.0000]])
    """

    def __init__(self, epsilon: float = 0.1) -> None:
        self.epsilon = check_positive(epsilon, "epsilon")

    def _craft(self, honest: torch.Tensor, view: AdversaryView) -> torch.Tensor:
        mu, _ = honest_mean_std(honest)
        return -self.epsilon * mu
