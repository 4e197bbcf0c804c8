"""FED-CURE: clients send cubic-regularised Newton steps, the server adds a norm-trimmed mean.

From Ghosh, Maity and Mazumdar (2023), "FED-CURE: A Robust Federated Learning Algorithm with Cubic Regularized
Newton" (FL workshop at ICML 2023).

Protocol ``cubic``: every client solves s_i ≈ argmin_s g_iᵀs + (γ/2)·sᵀH_i s + (M/6)·γ²·‖s‖³ on
its whole local data set (:class:`~fedrobust.clients.CubicClient`; γ = ``lr``, the paper uses 1;
M = ``cubic-m``; ``cubic-steps`` solver steps, Hessian-vector products only) and sends Q(s_i) with
the run's compressor (``auto``: none; the paper also uses ``bernoulli-qsgd``). The server keeps the
(1 − ``beta``) fraction with the smallest ‖Q(s_i)‖ and steps ``x ← x + eta · mean_kept Q(s_i)``
(:func:`~fedrobust.optim.fedcure_step`; Ghosh et al., 2023: η = 1, β = ψ + 2/m). Each round records
``kept_clients``.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from flwr.common import Scalar

from ..optim import fedcure_step
from .base import VectorStrategy
from .compressed import CompressedStrategy

__all__ = ["FedCure"]


class FedCure(CompressedStrategy, VectorStrategy):
    """The server of Ghosh et al. (2023) on the ``cubic`` protocol (see the module docstring)."""

    name: ClassVar[str] = "fed-cure"
    trims: ClassVar[str] = "clients"
    protocol: ClassVar[str] = "cubic"
    no_pre_aggregation: ClassVar[str] = ""

    def fit_config(self, server_round: int) -> dict[str, Scalar]:
        """The base config plus the cubic solver's ``cubic-m`` and ``cubic-steps``."""
        config = super().fit_config(server_round)
        config["cubic-m"] = self.cfg.cubic_m
        config["cubic-steps"] = self.cfg.cubic_steps
        return config

    def step(self, updates: torch.Tensor, weights: torch.Tensor) -> dict[str, Scalar] | None:
        """``x ← x + eta · mean`` of the (1 − beta) smallest-norm steps."""
        new_x, kept = fedcure_step(self.x, updates, self.cfg.beta, self.cfg.eta, overwrite=True)  # no row copy
        self.x.copy_(new_x)
        return {"kept_clients": int(kept.numel())}

    def aggregate_preview(self, rows: torch.Tensor, partitions: list[int], metrics: list[dict[str, Scalar]]) -> torch.Tensor:
        """The mean of the (1 − beta) rows of smallest norm."""
        new_x, _ = fedcure_step(torch.zeros_like(rows[0]), rows.clone(), self.cfg.beta, 1.0, overwrite=True)
        return new_x
