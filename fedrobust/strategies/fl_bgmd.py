"""FL-BGMD: local steps, compressed model differences, server error correction.

Algorithm 3 of Acharya (2021), "Robust and Efficient Collaborative Optimization for Deep Learning" (seminar
slides), a federated, communication-efficient variant of BGMD.

Clients run ``local-steps`` SGD steps (step ``lr``) from x and send ``c_i = Q(x − y_i)`` with the
run's compressor. The server keeps a residual memory M and, with ``gamma_s = server-lr``:

1. ``P[i] = gamma_s · c_i + M[i]``;
2. ``Delta = C_k(P)`` (k = rho · d). The slide writes ``C_k(G)``, a selection from the raw messages;
   fedrobust selects from P, because only then is ``P − Delta`` the part of P not yet applied,
   so that M is an error-feedback memory;
3. ``M[i] ← P[i] − Delta[i]``;
4. ``x ← x − GM(Delta)`` (a GM in R^k).

``memory = auto`` (or ``rows``) keeps one residual row per client id, an (N, d) float32 tensor
(4·N·d bytes); ``memory = mean`` keeps one shared vector as BGMD does, ``none`` none. See
:mod:`fedrobust.strategies.bgmd` for the shared step and its per-round metrics.
"""

from __future__ import annotations

from typing import ClassVar

from .bgmd import BlockGMStrategy
from .compressed import CompressedStrategy

__all__ = ["FLBGMD"]


class FLBGMD(CompressedStrategy, BlockGMStrategy):
    """FL-BGMD on the ``compressed-local-steps`` protocol, scaled by ``server-lr``."""

    name: ClassVar[str] = "fl-bgmd"
    protocol: ClassVar[str] = "compressed-local-steps"
    default_memory: ClassVar[str] = "rows"
    no_pre_aggregation: ClassVar[str] = (
        "its rows memory keeps one residual row per client, and a pre-aggregated row is no longer one client's"
    )

    def gamma(self) -> float:
        """The server step size ``server-lr`` (the clients' ``lr`` is already in x − y_i)."""
        return self.cfg.server_lr
