"""Block geometric median aggregation: the server step of BGMD and FL-BGMD.

BGMD is Algorithm 1 of Acharya, Hashemi, Jain, Sanghavi, Dhillon and Topcu (2022), "Robust Training in High
Dimensions via Block Coordinate Geometric Median Descent" (AISTATS); FL-BGMD is Algorithm 3 of Acharya (2021),
"Robust and Efficient Collaborative Optimization for Deep Learning" (seminar slides).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ..core.checks import check_int, check_matrix
from .block import block_select
from ._gram import combine
from .geometric_median import geometric_median, weiszfeld_weights

MEMORIES = ("mean", "rows", "none")
MEMORY_WEIGHTS = ("uniform", "gm")


class BlockGMStep(NamedTuple):
    """Result of :func:`block_geometric_median`."""

    update: torch.Tensor
    """The aggregate ``g~`` scattered back to R^d (zero off the block), shape (d,)."""
    memory: torch.Tensor | None
    """The new residual memory: shape (d,) for ``"mean"``, (n, d) for ``"rows"``, None for ``"none"``."""
    indices: torch.Tensor
    """The k selected coordinates."""
    relative_residual: float
    """1 - xi of the selection (Acharya et al. (2022) plot it in Figs. 7-8)."""
    iterations: int
    """Weiszfeld iterations of the GM in R^k."""


def block_geometric_median(
    p: torch.Tensor,
    k: int,
    generator: torch.Generator | None = None,
    selection: str = "sample",
    memory: str = "mean",
    memory_weights: str = "uniform",
    tol: float = 1e-9,
    max_iter: int = 1000,
) -> BlockGMStep:
    """One block-GM aggregation: select k coordinates of the rows of ``p``, take the geometric
    median there, and keep what was not selected as residual memory.

    The caller forms ``p`` (BGMD: ``P[i] = gamma * g_i + m`` with the mean memory ``m``;
    FL-BGMD: ``P[i] = gamma_s * c_i + M[i]`` with one residual row per client) and steps
    ``x <- x - update``. Here:

    1. ``Delta = C_k(P)`` (:func:`~fedrobust.aggregators.block_select`);
    2. the new memory is ``P - Delta``: its row mean (``memory="mean"``, BGMD's ``m``), every row
       (``memory="rows"``, FL-BGMD's per-client ``M``), or nothing (``memory="none"``, the
       ablation without memory);
    3. ``update`` is the GM of the rows of ``Delta`` restricted to the k columns, scattered to R^d.

    ``p`` is modified in place (the selected columns are zeroed to form ``P - Delta``) so the
    server holds one (n, d) matrix, not three; pass a copy if you need it afterwards.

    Parameters
    ----------
    p : torch.Tensor
        Memory-augmented client vectors, shape (n, d); overwritten.
    k : int
        Block size, ``1 <= k <= d`` (``k = rho * d``).
    generator : torch.Generator, optional
        For the block draw.
    selection : {"sample", "top-k"}
        See :func:`~fedrobust.aggregators.block_select`.
    memory : {"mean", "rows", "none"}
        Which residual memory to return.
    memory_weights : {"uniform", "gm"}
        How ``memory="mean"`` averages the rows of ``P - Delta``: plainly (the literal mean of
        Acharya et al., 2022), or with the GM's Weiszfeld weights
        (:func:`~fedrobust.aggregators.weiszfeld_weights`), which give far rows, such as
        attackers', almost no say in the memory every row gets next round.
    tol, max_iter
        Passed to :func:`~fedrobust.aggregators.geometric_median`.

    Returns
    -------
    BlockGMStep

    Examples
    --------
    >>> p = torch.tensor([[1.0, 10.0, 0.1], [1.2, 10.0, -0.1], [0.8, 10.0, 0.0], [-100.0, -1000.0, 5.0]])
    >>> step = block_geometric_median(p, k=2, selection="top-k")
    >>> step.indices.tolist()
    [0, 1]
    >>> [round(v, 3) for v in step.update.tolist()]
    [1.0, 10.0, 0.0]
    >>> [round(v, 3) for v in step.memory.tolist()]  # mean of the unselected coordinates
    [0.0, 0.0, 1.25]
    """
    check_matrix(p, "p")
    check_int(k, "k", low=1, high=p.shape[1])
    if memory not in MEMORIES:
        raise ValueError(f"memory must be one of {MEMORIES}, got {memory!r}")
    if memory_weights not in MEMORY_WEIGHTS:
        raise ValueError(f"memory_weights must be one of {MEMORY_WEIGHTS}, got {memory_weights!r}")
    sel = block_select(p, k, generator=generator, selection=selection)
    block = p.index_select(1, sel.indices)
    gm = geometric_median(block, tol=tol, max_iter=max_iter)
    update = torch.zeros(p.shape[1], dtype=p.dtype, device=p.device)
    update[sel.indices] = gm.median
    if memory == "none":
        new_memory = None
    else:
        p[:, sel.indices] = 0  # P - Delta
        if memory == "rows":
            new_memory = p
        elif memory_weights == "gm":
            new_memory = combine(p, weiszfeld_weights(gm.distances))
        else:
            new_memory = p.mean(dim=0)
    return BlockGMStep(update, new_memory, sel.indices, sel.relative_residual, gm.iterations)
