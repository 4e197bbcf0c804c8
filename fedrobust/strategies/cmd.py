"""CMD: coordinate-wise median descent on the gradient protocol, ``x ← x − lr · CM(G)``
(:class:`~fedrobust.aggregators.rules.CMDRule`)."""

from __future__ import annotations

from typing import ClassVar

from ..aggregators.rules import CMDRule
from .rule import RuleStrategy

__all__ = ["CMD"]


class CMD(RuleStrategy):
    """``x ← x − lr · coordinate_median(G)``.

    From Yin, Chen, Ramchandran and Bartlett (2018), "Byzantine-Robust Distributed Learning: Towards Optimal
    Statistical Rates" (ICML).
    """

    name: ClassVar[str] = "cmd"
    rule_class = CMDRule
