"""GMD: geometric-median descent on the gradient protocol (full GM in R^d, no memory).

Each round ``x ← x − GM(lr · g_1, …, lr · g_n)``, the GM computed by
:func:`fedrobust.aggregators.geometric_median` with ``gm-tol`` and ``gm-max-iter``. BGMD with
``rho = 1`` is the same update (see :mod:`fedrobust.strategies.bgmd`).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from flwr.common import Scalar

from ..aggregators import geometric_median
from .gradient import GradientStrategy

__all__ = ["GMD"]


class GMD(GradientStrategy):
    """``x ← x − GM(lr · G)``; records ``gm_iterations`` each round."""

    name: ClassVar[str] = "gmd"

    def step(self, updates: torch.Tensor, weights: torch.Tensor) -> dict[str, Scalar] | None:
        """Take the rows' geometric median and step by ``lr`` times it (= GM(lr · G): the GM is
        scale-equivariant and its tolerance scale-free, so the rows are not scaled)."""
        gm = geometric_median(updates, tol=self.cfg.gm_tol, max_iter=self.cfg.gm_max_iter)
        self.x.sub_(gm.median, alpha=self.lr)
        return {"gm_iterations": int(gm.iterations)}
