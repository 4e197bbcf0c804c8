"""FedAvg on the local-steps protocol: clients run H local SGD steps and send Δ_i = x − y_i.

The server steps ``x ← x − mean(Δ)``; with ``weighted = true`` the mean is weighted by the
clients' numbers of examples, as in McMahan, Moore, Ramage, Hampson and Agüera y Arcas (2017),
"Communication-Efficient Learning of Deep Networks from Decentralized Data" (AISTATS); otherwise uniform.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from flwr.common import Scalar

from ..aggregators import mean
from .base import VectorStrategy

if TYPE_CHECKING:  # config imports the libraries, never the other way round
    from ..config import RunConfig

__all__ = ["FedAvg"]


class FedAvg(VectorStrategy):
    """``x ← x − mean(Δ)`` over the clients' model differences (see module docstring)."""

    name: ClassVar[str] = "fedavg"
    protocol: ClassVar[str] = "local-steps"
    no_pre_aggregation: ClassVar[str] = ""

    @classmethod
    def pre_aggregation_problems(cls, cfg: RunConfig) -> list[str]:
        """Also: ``weighted`` means one example count per row, which pre-aggregated rows lack."""
        problems = super().pre_aggregation_problems(cfg)
        if not problems and cfg.weighted and str(cfg.pre_aggregation).strip(" ,"):
            problems.append("pre-aggregation: fedavg with weighted = true takes none: pre-aggregated rows are no "
                            "longer one client's, so they have no example count; set weighted = false")
        return problems

    def step(self, updates: torch.Tensor, weights: torch.Tensor) -> dict[str, Scalar] | None:
        """Apply ``x ← x − mean(updates)``, weighted by ``weights`` when ``cfg.weighted``."""
        self.x.sub_(mean(updates, weights if self.cfg.weighted else None))
        return None

    def aggregate_preview(self, rows: torch.Tensor, partitions: list[int], metrics: list[dict[str, Scalar]]) -> torch.Tensor:
        """The uniform mean of the rows (a preview knows no example counts)."""
        return mean(rows)
