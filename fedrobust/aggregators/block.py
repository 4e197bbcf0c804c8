"""Block coordinate selection C_k (001, Algorithm 2: active norm sampling)."""

from __future__ import annotations

from typing import NamedTuple

import torch

import numpy as np

from .._checks import check_int, check_matrix
from ._chunks import column_blocks
SELECTIONS = ("sample", "top-k")


class BlockSelection(NamedTuple):
    """Result of :func:`block_select`."""

    indices: torch.Tensor
    """The k selected column indices, sorted ascending (int64)."""
    scores: torch.Tensor
    """Column scores ``||x[:, j]||^2``, shape (d,)."""
    relative_residual: float
    """``||x - C_k(x)||_F^2 / ||x||_F^2`` = 1 - xi (0 when ``x`` is all zeros)."""


def column_scores(x: torch.Tensor) -> torch.Tensor:
    """Squared column norms ``s_j = sum_i x[i, j]^2``, reading ``x`` once.

    Examples
    --------
    >>> column_scores(torch.tensor([[1.0, 2.0], [3.0, 0.0]]))
    tensor([10.,  4.])
    """
    check_matrix(x)
    out = torch.empty(x.shape[1], dtype=x.dtype, device=x.device)
    for start, block in column_blocks(x):
        torch.sum(block * block, dim=0, out=out[start : start + block.shape[1]])
    return out


def relative_residual(scores: torch.Tensor, indices: torch.Tensor) -> float:
    """The relative residual ``1 - xi = ||G - C_k(G)||_F^2 / ||G||_F^2`` of a selection.

    Parameters
    ----------
    scores : torch.Tensor
        Column scores of ``G`` (see :func:`column_scores`).
    indices : torch.Tensor
        Selected columns.

    Examples
    --------
    >>> relative_residual(torch.tensor([1.0, 3.0, 0.0]), torch.tensor([1]))
    0.25
    """
    total = float(scores.sum(dtype=torch.float64))
    if total == 0.0:
        return 0.0
    kept = float(scores.index_select(0, indices).sum(dtype=torch.float64))
    return max(0.0, 1.0 - kept / total)


def block_select(
    x: torch.Tensor,
    k: int,
    generator: torch.Generator | None = None,
    selection: str = "sample",
) -> BlockSelection:
    """Choose k of the d columns of ``x``: BGMD's block coordinate selection.

    With ``selection="sample"`` (001's Algorithm 2), k distinct columns are drawn without
    replacement, each draw picking a remaining column with probability proportional to its score
    ``s_j = ||x[:, j]||^2``. The draw uses exponential keys (Efraimidis and Spirakis): column j gets
    ``E_j / s_j`` with ``E_j ~ Exp(1)`` and the k smallest keys win, which is exactly successive
    sampling without replacement, in O(d) vectorised work. Columns with zero score are chosen only
    when fewer than k columns have a positive score, then uniformly at random.
    ``selection="top-k"`` takes the k largest scores deterministically (what 001's code does).

    Note that rows with huge entries (e.g. scaled bit-flip attackers) dominate the column scores
    and so steer which block is chosen; the geometric median on the block still limits their
    influence on the aggregate.

    Parameters
    ----------
    x : torch.Tensor
        Shape (n, d).
    k : int
        Number of columns, ``1 <= k <= d``.
    generator : torch.Generator, optional
        Seeded generator on ``x``'s device, for reproducible draws.
    selection : {"sample", "top-k"}
        Sampling rule.

    Returns
    -------
    BlockSelection
        ``(indices, scores, relative_residual)``.

    Examples
    --------
    >>> x = torch.tensor([[0.0, 5.0, 0.0, 1.0], [0.0, 5.0, 0.0, 1.0]])
    >>> block_select(x, 1, selection="top-k").indices.tolist()
    [1]
    >>> g = torch.Generator().manual_seed(0)
    >>> sorted(block_select(x, 2, generator=g).indices.tolist())  # the two non-zero columns
    [1, 3]
    """
    check_matrix(x)
    d = x.shape[1]
    check_int(k, "k", low=1, high=d)
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
    scores = column_scores(x)
    if selection == "top-k":
        indices = torch.topk(scores, k, sorted=False).indices
    else:
        indices = _sample_without_replacement(scores, k, generator)
    indices = torch.sort(indices).values
    return BlockSelection(indices, scores, relative_residual(scores, indices))


def _sample_without_replacement(scores: torch.Tensor, k: int, generator: torch.Generator | None) -> torch.Tensor:
    top = scores.max()
    if scores.device.type == "cpu":
        # numpy's PCG64 exponentials and argpartition are several times faster than torch's on CPU;
        # the seed comes from the torch generator, so the draw is reproducible the same way.
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        keys = torch.from_numpy(np.random.default_rng(seed).standard_exponential(scores.numel(), dtype=np.float32))
    else:
        keys = torch.empty(scores.shape, dtype=torch.float32, device=scores.device)
        keys.exponential_(generator=generator)
    if float(top) > 0:
        keys /= (scores / top).to(torch.float32)  # zero (or negligible) scores give +inf keys
    else:
        keys.fill_(float("inf"))
    candidates = torch.isfinite(keys)
    available = int(candidates.sum())
    if available >= k:
        if keys.device.type == "cpu":
            return torch.from_numpy(np.argpartition(keys.numpy(), k - 1)[:k].astype(np.int64))
        return torch.topk(keys, k, largest=False, sorted=False).indices
    # Too few columns carry weight: take them all, and the rest uniformly among the others.
    chosen = torch.nonzero(candidates).flatten()
    others = torch.nonzero(~candidates).flatten()
    pick = torch.randperm(others.numel(), generator=generator, device=scores.device)[: k - available]
    return torch.cat([chosen, others[pick]])
