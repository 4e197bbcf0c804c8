"""BGMD: block geometric-median descent and the block-GM server shared with QBGMD and FL-BGMD.

BGMD is Algorithm 1 of Acharya, Hashemi, Jain, Sanghavi, Dhillon and Topcu (2022), "Robust Training in High
Dimensions via Block Coordinate Geometric Median Descent" (AISTATS); QBGMD and FL-BGMD come from Acharya
(2021), "Robust and Efficient Collaborative Optimization for Deep Learning" (seminar slides).

Server state: the model ``x`` and a residual memory. Each round, with the accepted client vectors
``v_i`` (gradients for BGMD and QBGMD, compressed model differences for FL-BGMD):

1. ``P[i] = gamma · v_i + memory`` (built in place in the received (n, d) matrix);
2. :func:`~fedrobust.aggregators.block_geometric_median` selects ``k = max(1, round(rho · d))``
   columns of ``P`` (``selection``: ``sample`` by column norm, the paper's Algorithm 2, or ``top-k``),
   takes the geometric median of the rows there (``gm-tol``, ``gm-max-iter``) and keeps
   ``P − C_k(P)`` as the new memory;
3. ``x ← x − g~``.

``gamma`` is ``lr`` for BGMD / QBGMD and ``server-lr`` for FL-BGMD. The ``memory`` key picks the
residual memory:

- ``mean``: one vector m ∈ R^d, a row average of ``P − C_k(P)`` (the paper's m̂; default of bgmd, qbgmd).
  Acharya et al. (2022) average uniformly over all rows, so Byzantine rows write their residuals into
  the memory that is added to every row next round, and the GM (translation-equivariant) passes it on to x:
  measured on mnist5k, scaled bit-flip at ψ = 0.2 then drives BGMD to chance accuracy. By default
  (``memory_weights="gm"``) the rows are therefore weighted by their Weiszfeld weights at the
  block's GM (:func:`~fedrobust.aggregators.weiszfeld_weights`), which give far rows little
  weight; ``memory_weights="uniform"`` is the paper's literal mean;
- ``rows``: one residual row per client, kept by partition id in an (N, d) float32 tensor allocated
  on first use (N = ``num-clients``: 4·N·d bytes on the server, e.g. 4.7 GB for 1000 clients of
  a 1.16M-parameter LeNet; default of fl-bgmd);
- ``none``: no memory (the ablation of Acharya et al., 2022, Fig. 6).

Note that attackers with huge messages dominate the column norms and so steer which block is
chosen (either selection rule), and under ``mean`` memory their residuals enter the shared memory;
the geometric median on the block limits their pull on ``x``.

Every round records ``relative_residual`` (1 − ξ of the selection), ``gm_iterations`` and
``block_size``; the base records ``aggregation_seconds``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from flwr.common import Scalar

from ..aggregators import MEMORY_WEIGHTS
from ..aggregators.rules import BGMDRule, block_size
from .base import VectorStrategy

if TYPE_CHECKING:  # config imports the libraries, never the other way round
    from ..config import RunConfig


__all__ = ["BlockGMStrategy", "BGMD", "block_size", "MEMORY_WEIGHTS"]


class BlockGMStrategy(VectorStrategy):
    """The block-GM server of BGMD, QBGMD and FL-BGMD (see the module docstring).

    Subclasses set ``name``, ``protocol``, ``default_memory`` (what ``memory = auto`` means) and
    :meth:`gamma`. A ``pre-aggregation`` runs before the step unless the memory is ``rows``
    (one residual row per client, which mixed rows would scramble).

    Parameters
    ----------
    cfg, x0, shapes, evaluate_fn, on_round
        As for :class:`~fedrobust.strategies.VectorStrategy`.
    memory_weights : {"gm", "uniform"}
        How the ``mean`` memory averages the residual rows: by the GM's Weiszfeld weights
        (default, robust) or uniformly (Algorithm 1 of Acharya et al., 2022, as written).

    Attributes
    ----------
    k : int
        Block size.
    memory_mode : str
        ``"mean"``, ``"rows"`` or ``"none"`` (``auto`` resolved).
    memory : torch.Tensor or None
        The mean memory m (d,) (``mean``), else None.
    residuals : torch.Tensor or None
        The per-client residual rows (N, d) (``rows``, once allocated), else None.
    """

    default_memory: ClassVar[str] = "mean"

    def __init__(
        self,
        cfg: RunConfig,
        x0: torch.Tensor,
        shapes: Sequence[tuple[int, ...]],
        *,
        memory_weights: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(cfg, x0, shapes, **kwargs)
        memory_weights = cfg.memory_weights if memory_weights is None else memory_weights
        if memory_weights not in MEMORY_WEIGHTS:
            raise ValueError(f"memory_weights must be one of {MEMORY_WEIGHTS}, got {memory_weights!r}")
        self.memory_weights = memory_weights
        self.k = block_size(cfg.rho, self.x.numel())
        self.memory_mode = self.default_memory if cfg.memory == "auto" else cfg.memory
        self.rule = BGMDRule.from_config(cfg, memory=self.memory_mode, memory_weights=memory_weights)
        self.memory: torch.Tensor | None = None
        self.residuals: torch.Tensor | None = None

    no_pre_aggregation: ClassVar[str] = ""

    @classmethod
    def pre_aggregation_problems(cls, cfg: RunConfig) -> list[str]:
        """Also: ``memory = rows`` keeps one residual row per client, which mixed rows would scramble."""
        problems = super().pre_aggregation_problems(cfg)
        mode = cls.default_memory if cfg.memory == "auto" else cfg.memory
        if not problems and mode == "rows" and str(cfg.pre_aggregation).strip(" ,"):
            problems.append(f"pre-aggregation: {cls.name} with memory = rows takes none: the memory keeps one residual "
                            "row per client, and a pre-aggregated row is no longer one client's; use memory = mean")
        return problems

    @classmethod
    def memory_factor_for(cls, cfg: RunConfig) -> float:
        """1 + rho: the stacked matrix and the copy of its k = rho · d selected columns."""
        return 1.0 + cfg.rho

    @classmethod
    def residual_rows_bytes(cls, cfg: RunConfig, d: int) -> int:
        """Bytes of the per-client residual rows under ``rows`` memory (4 · num-clients · d), else 0."""
        mode = cls.default_memory if cfg.memory == "auto" else cfg.memory
        return 4 * cfg.num_clients * d if mode == "rows" else 0

    @classmethod
    def state_bytes_for(cls, cfg: RunConfig, d: int) -> int:
        """``x``, plus the mean memory (4d) or the per-client residual rows (4 · num-clients · d)."""
        mode = cls.default_memory if cfg.memory == "auto" else cfg.memory
        return 4 * d + (4 * d if mode == "mean" else cls.residual_rows_bytes(cfg, d))

    def gamma(self) -> float:
        """The step size the client vectors are scaled by before the memory is added."""
        return self.lr

    def step(self, updates: torch.Tensor, weights: torch.Tensor) -> dict[str, Scalar] | None:
        """One block-GM step on the (n, d) client vectors (overwritten in place).

        While there is no memory to add, ``P = gamma · G`` is never formed: the selection and the
        GM are scale-equivariant, so the step runs on ``G`` and scales its results by ``gamma``.
        The mean memory is the (weighted) row mean of ``P`` with the block zeroed.
        """
        p, rows = updates, None
        scale = self.gamma()  # what the rows are multiplied by
        if self.memory_mode == "rows":
            rows = self._rows_of(self.round_partitions)
            residuals = self._residual_rows()
            for i, r in enumerate(self.round_partitions):  # row by row: no (n, d) copy of the residuals
                torch.add(residuals[r], p[i], alpha=scale, out=p[i])
            scale = 1.0
        out = self.rule(p, self.memory if self.memory_mode == "mean" else None, self.server_round, scale=scale)
        if self.memory_mode == "mean":
            self.memory = out.state
        elif rows is not None:
            self._residual_rows().index_copy_(0, rows, out.state)
        self.x.sub_(out.update, alpha=out.scale)
        return dict(out.metrics)

    # -------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """``x``, ``round``, the mean ``memory`` and the per-client ``residuals`` (None when unused)."""
        state = super().state_dict()
        state["memory"] = None if self.memory is None else self.memory.detach().cpu().clone()
        state["residuals"] = None if self.residuals is None else self.residuals.detach().cpu().clone()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output (memory and residuals onto this strategy's device).

        Raises
        ------
        ValueError
            If ``memory`` is not of shape (d,) or ``residuals`` not of shape (num-clients, d).
        """
        d, n = self.x.numel(), self.cfg.num_clients
        memory, residuals = state.get("memory"), state.get("residuals")
        if memory is not None and tuple(memory.shape) != (d,):
            raise ValueError(f"state['memory'] must have shape ({d},), got {tuple(memory.shape)}")
        if residuals is not None and tuple(residuals.shape) != (n, d):
            raise ValueError(f"state['residuals'] must have shape ({n}, {d}), got {tuple(residuals.shape)}")
        super().load_state_dict(state)
        self.memory = None if memory is None else memory.to(self.device, torch.float32).clone()
        self.residuals = None if residuals is None else residuals.to(self.device, torch.float32).clone()

    # ------------------------------------------------------------------------------ helpers
    def aggregate_preview(self, rows: torch.Tensor, partitions: list[int], metrics: list[dict[str, Scalar]]) -> torch.Tensor:
        """The block-GM step of :meth:`step` on a copy of the rows with this round's block and the
        current memory, divided by :meth:`gamma`; the memory and the residual rows are left as they are."""
        p, scale = rows.clone(), self.gamma()
        if self.memory_mode == "rows" and self.residuals is not None:
            self._rows_of(partitions)  # the same checks as a step
            for i, r in enumerate(partitions):
                torch.add(self.residuals[r], p[i], alpha=scale, out=p[i])
            scale = 1.0
        elif self.memory_mode == "rows":
            p.mul_(scale)
            scale = 1.0
        memory = self.memory.clone() if self.memory_mode == "mean" and self.memory is not None else None
        out = self.rule(p, memory, self.server_round, scale=scale)
        return out.update * (out.scale / self.gamma())

    def _residual_rows(self) -> torch.Tensor:
        if self.residuals is None:
            self.residuals = torch.zeros(self.cfg.num_clients, self.x.numel(), dtype=torch.float32, device=self.device)
        return self.residuals

    def _rows_of(self, partitions: list[int]) -> torch.Tensor:
        n = self.cfg.num_clients
        if any(not 0 <= p < n for p in partitions) or len(set(partitions)) != len(partitions):
            raise ValueError(f"residual rows need distinct partition ids in [0, num-clients={n}), got {partitions}")
        return torch.tensor(partitions, dtype=torch.int64, device=self.device)


class BGMD(BlockGMStrategy):
    """BGMD on the gradient protocol: ``P = lr · G + m``, block GM, ``x ← x − g~``.

    Algorithm 1 of Acharya et al. (2022).
    """

    name: ClassVar[str] = "bgmd"
    protocol: ClassVar[str] = "gradient"
