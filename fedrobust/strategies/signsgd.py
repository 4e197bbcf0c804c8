"""signSGD with majority vote, a baseline of the norm-thresholding and C-RSA papers.

From Bernstein, Zhao, Azizzadenesheli and Anandkumar (2019), "signSGD with Majority Vote is
Communication Efficient and Fault Tolerant" (ICLR). Ghosh, Maity, Kadhe, Mazumdar and Ramchandran (2021),
"Communication-Efficient and Byzantine-Robust Distributed Learning with Error Feedback" and He, Zhu and Ling
(2023), "C-RSA: Byzantine-robust and communication-efficient distributed learning in the non-convex and
non-IID regime" compare against it.

Protocol ``compressed-gradient`` with the ``sign`` compressor: every client sends sign(g_i) (one
bit per coordinate, ceil(d/8) bytes; a second bit-plane only when g_i has exact zeros), the server
steps ``x ← x − lr · sign(Σ_i sign(g_i))`` (:func:`~fedrobust.optim.signsgd_step`): every
coordinate moves by exactly ``lr`` or not at all, so ``lr`` is much smaller than for SGD.
``compressor`` must be ``auto`` or ``sign``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from flwr.common import Scalar

from ..optim import signsgd_step
from .base import VectorStrategy
from .compressed import CompressedStrategy

if TYPE_CHECKING:  # config imports the libraries, never the other way round
    from ..config import RunConfig


__all__ = ["SignSGDMV"]


class SignSGDMV(CompressedStrategy, VectorStrategy):
    """``x ← x − lr · majority_sign(G)`` over the clients' sign messages.

    Raises
    ------
    ConfigError
        If ``compressor`` is neither ``auto`` nor ``sign`` (:meth:`config_problems`).
    """

    name: ClassVar[str] = "signsgd-mv"
    protocol: ClassVar[str] = "compressed-gradient"
    default_compressor: ClassVar[str] = "sign"
    no_pre_aggregation: ClassVar[str] = "its step is a vote of one sign per client, and a pre-aggregated row is no vote"

    @classmethod
    def config_problems(cls, cfg: RunConfig) -> list[str]:
        """``compressor`` must be ``auto`` or ``sign``."""
        if cfg.compressor in ("auto", "sign"):
            return []
        return [f"compressor: signsgd-mv sends sign(g), so compressor must be auto or sign; got {cfg.compressor!r}"]

    def step(self, updates: torch.Tensor, weights: torch.Tensor) -> dict[str, Scalar] | None:
        """The majority-vote step; ``weights`` are ignored (one vote per client)."""
        self.x.copy_(signsgd_step(self.x, updates, self.lr))
        return None

    def aggregate_preview(self, rows: torch.Tensor, partitions: list[int], metrics: list[dict[str, Scalar]]) -> torch.Tensor:
        """The coordinate-wise majority sign of the rows."""
        return -signsgd_step(torch.zeros_like(rows[0]), rows, 1.0)
