"""Krum and multi-Krum on the gradient protocol: ``x ← x − lr · Krum_f,m(G)`` (Blanchard, El Mhamdi,
Guerraoui and Stainer, 2017, "Machine Learning with Adversaries: Byzantine Tolerant Gradient Descent").

``f`` is ``krum-f``, or with ``krum-f = -1`` the number of Byzantine clients expected among the
sampled ones, ``floor(byzantine-fraction · clients-per-round)``. Krum needs ``2f + 2 < n``: when a
round has too few accepted replies for that (rejections, or ψ = 0.4 of 10 clients), ``f`` is
lowered to the largest valid value and the round records the ``krum_f`` it used. ``m = krum-m``
rows are averaged (1: Krum), at most ``n − f``.
"""

from __future__ import annotations

from typing import ClassVar

from ..aggregators.rules import KrumRule, krum_f
from .rule import RuleStrategy

__all__ = ["Krum", "krum_f"]


class Krum(RuleStrategy):
    """``x ← x − lr · krum(G, f, m)`` (:class:`~fedrobust.aggregators.rules.KrumRule`); records
    the ``krum_f`` used each round."""

    name: ClassVar[str] = "krum"
    rule_class = KrumRule
