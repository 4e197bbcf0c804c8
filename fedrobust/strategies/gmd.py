"""GMD: geometric-median descent on the gradient protocol (full GM in R^d, no memory).

Each round ``x ← x − GM(lr · g_1, …, lr · g_n)``, the GM computed by
:func:`fedrobust.aggregators.geometric_median` with ``gm-tol`` and ``gm-max-iter``
(:class:`~fedrobust.aggregators.rules.GMDRule`; the GM is scale-equivariant and its tolerance
scale-free, so the rows are not scaled). BGMD with ``rho = 1`` is the same update (see
:mod:`fedrobust.strategies.bgmd`). Records ``gm_iterations`` each round.
"""

from __future__ import annotations

from typing import ClassVar

from ..aggregators.rules import GMDRule
from .rule import RuleStrategy

__all__ = ["GMD"]


class GMD(RuleStrategy):
    """``x ← x − GM(lr · G)``; records ``gm_iterations`` each round."""

    name: ClassVar[str] = "gmd"
    rule_class = GMDRule
