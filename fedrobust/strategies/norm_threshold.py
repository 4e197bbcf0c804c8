"""Norm-thresholding with compression (Algorithm 1) and with error feedback (Algorithm 2).

Both from Ghosh, Maity, Kadhe, Mazumdar and Ramchandran (2021), "Communication-Efficient and Byzantine-Robust
Distributed Learning with Error Feedback" (IEEE JSAIT).

``norm-threshold`` (protocol ``compressed-gradient-norm``): every client sends Q(g_i), its
minibatch gradient compressed by the run's compressor (``auto``: ``scaled-sign`` as in the paper), and
reports ‖g_i‖ (the uncompressed norm) in its metrics as ``grad_norm``. The server ranks the clients
by a norm, keeps the (1 − ``beta``) fraction with the smallest ones and steps
``x ← Π_W(x − lr · mean_kept Q(g_i))`` (:func:`~fedrobust.optim.norm_threshold_step`):

- ``norm-option = 1`` ranks by the reported ``grad_norm``: a reply without one, or with a
  non-numeric, negative or non-finite one, is malformed (rejected and counted in
  ``rejected_clients``). The norm is a client's claim: a Byzantine client here reports the norm of
  the message it compressed, but one that lies about it is not caught.
- ``norm-option = 2`` (default) ranks by ‖Q(g_i)‖, which the server computes from the message.

``norm-threshold-ef`` (protocol ``error-feedback``): every client keeps e_i in ``Context.state``,
sends Q(lr · g_i + e_i) and keeps the residual; the server ranks by ‖Q(p_i)‖ and steps
``x ← Π_W(x − mean_kept Q(p_i))``, with no second step size: the paper's
Algorithm 2 multiplies by γ again on the server, but γ is already inside p_i, so fedrobust applies it
once.

Π_W is the projection on the ℓ2 ball of radius ``radius`` around the origin, off when ``radius =
0`` (default). ``beta`` must exceed the Byzantine fraction ψ for the guarantees of Ghosh et al. (2021). Each
round records ``kept_clients``. ``bytes_up`` counts the payloads (the reported norm travels as one
metric, not counted).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from flwr.common import Scalar

from ..optim import norm_threshold_step
from .base import VectorStrategy
from .compressed import CompressedStrategy

if TYPE_CHECKING:  # config imports the libraries, never the other way round
    from ..config import RunConfig

__all__ = ["NormThreshold", "NormThresholdEF", "NORM_KEY", "reported_norm"]

NORM_KEY = "grad_norm"
"""The metric in which ``compressed-gradient-norm`` clients report ‖g_i‖."""


def reported_norm(metrics: dict[str, Scalar]) -> float | None:
    """The ``grad_norm`` a reply reports, or None when it is missing or not a finite number >= 0.

    Examples
    --------
    >>> reported_norm({"grad_norm": 2.5}), reported_norm({"grad_norm": 3})
    (2.5, 3.0)
    >>> [reported_norm(m) for m in ({}, {"grad_norm": "1"}, {"grad_norm": float("nan")}, {"grad_norm": -1.0})]
    [None, None, None, None]
    >>> reported_norm({"grad_norm": True}) is None
    True
    """
    value = metrics.get(NORM_KEY)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and value >= 0 else None


class NormThreshold(CompressedStrategy, VectorStrategy):
    """Algorithm 1 of Ghosh et al. (2021) on the ``compressed-gradient-norm`` protocol (see the module
    docstring)."""

    name: ClassVar[str] = "norm-threshold"
    trims: ClassVar[str] = "clients"
    protocol: ClassVar[str] = "compressed-gradient-norm"
    default_compressor: ClassVar[str] = "scaled-sign"
    no_pre_aggregation: ClassVar[str] = ""

    @classmethod
    def pre_aggregation_problems(cls, cfg: RunConfig) -> list[str]:
        """Also: ``norm-option = 1`` ranks each row by its sender's reported norm, which a
        pre-aggregated row (several clients' mix) does not have."""
        problems = super().pre_aggregation_problems(cfg)
        if (not problems and cfg.norm_option == 1 and cls.ranking_norms is NormThreshold.ranking_norms
                and str(cfg.pre_aggregation).strip(" ,")):
            problems.append(f"pre-aggregation: {cls.name} with norm-option = 1 takes none: it ranks rows by the norms "
                            "their senders report, which pre-aggregated rows lack; use norm-option = 2")
        return problems

    def check_metrics(self, metrics: dict[str, Scalar]) -> str | None:
        """Option 1 needs a valid reported norm (:func:`reported_norm`); option 2 accepts any metrics."""
        if self.cfg.norm_option != 1 or reported_norm(metrics) is not None:
            return None
        return "missing or invalid metrics"

    def encode_reply(
        self, row: torch.Tensor, metrics: dict[str, Scalar], server_round: int, partition: int
    ) -> tuple[list[np.ndarray], dict[str, Scalar]]:
        """The compressed ``row``, reporting its own norm ‖row‖ as ``grad_norm`` (as the
        client-local attacks do: the norm of the message it compressed)."""
        arrays, metrics = super().encode_reply(row, metrics, server_round, partition)
        return arrays, {**metrics, NORM_KEY: float(row.to(torch.float64).norm())}

    def aggregate_preview(self, rows: torch.Tensor, partitions: list[int], metrics: list[dict[str, Scalar]]) -> torch.Tensor:
        """The mean of the (1 − beta) rows of smallest norm (the rows' own norms, also under
        ``norm-option = 1``, and no projection)."""
        new_x, _ = norm_threshold_step(torch.zeros_like(rows[0]), rows.clone(), self.cfg.beta, 1.0, overwrite=True)
        return -new_x

    def step_size(self) -> float:
        """The server's step size γ: ``lr`` (the messages are raw compressed gradients)."""
        return self.lr

    def ranking_norms(self, updates: torch.Tensor) -> torch.Tensor | None:
        """The norms the clients are ranked by: reported (option 1) or None (the messages' own)."""
        if self.cfg.norm_option != 1:
            return None
        values = [reported_norm(m) for m in self.round_metrics]
        return torch.tensor(values, dtype=torch.float32, device=updates.device)

    def step(self, updates: torch.Tensor, weights: torch.Tensor) -> dict[str, Scalar] | None:
        """Keep the (1 − beta) smallest norms, ``x ← Π_W(x − γ · mean_kept)``."""
        radius = self.cfg.radius or None
        new_x, kept = norm_threshold_step(
            self.x, updates, self.cfg.beta, self.step_size(), norms=self.ranking_norms(updates), radius=radius,
            overwrite=True,  # updates is the round's scratch matrix: reorder its rows, do not copy the kept ones
        )
        self.x.copy_(new_x)
        return {"kept_clients": int(kept.numel())}


class NormThresholdEF(NormThreshold):
    """Algorithm 2 of Ghosh et al. (2021) on the ``error-feedback`` protocol: rank by ‖Q(p_i)‖, step by
    their mean."""

    name: ClassVar[str] = "norm-threshold-ef"
    protocol: ClassVar[str] = "error-feedback"

    def check_metrics(self, metrics: dict[str, Scalar]) -> str | None:
        """No reported norm is used: any metrics are accepted."""
        return None

    def step_size(self) -> float:
        """1: the clients already scaled their messages by ``lr`` (no second γ)."""
        return 1.0

    def ranking_norms(self, updates: torch.Tensor) -> torch.Tensor | None:
        """None: always the messages' own norms."""
        return None
