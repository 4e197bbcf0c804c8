"""Coordinate-wise trimmed mean on the gradient protocol: ``x ← x − lr · TM_beta(G)``.

``beta`` (the run key) is the fraction trimmed from *each* side of every coordinate, so it must
lie in [0, 0.5) here (:class:`~fedrobust.aggregators.rules.TrimmedMeanRule`).
"""

from __future__ import annotations

from typing import ClassVar

from ..aggregators.rules import TrimmedMeanRule
from .rule import RuleStrategy

__all__ = ["TrimmedMean"]


class TrimmedMean(RuleStrategy):
    """``x ← x − lr · trimmed_mean(G, beta)``.

    From Yin, Chen, Ramchandran and Bartlett (2018), "Byzantine-Robust Distributed Learning: Towards Optimal
    Statistical Rates" (ICML).

    Raises
    ------
    ConfigError
        If ``beta`` is not in [0, 0.5) (the rule refuses it; :meth:`config_problems`).
    """

    name: ClassVar[str] = "trimmed-mean"
    rule_class = TrimmedMeanRule
    trims: ClassVar[str] = "values"
