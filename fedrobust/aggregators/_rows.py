"""Row moves in place: select rows of an (n, d) matrix without copying the matrix."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..core.checks import check_matrix


def gather_rows_(x: torch.Tensor, rows: torch.Tensor | Sequence[int]) -> torch.Tensor:
    """Move the listed rows of ``x`` to its top, in that order, in place; return the view ``x[:m]``.

    ``x[:m]`` then equals ``x.index_select(0, rows)`` (for a contiguous ``x``, with the same
    strides, so reductions over it give bit for bit the same results) without allocating the
    m x d copy: the rows are swapped through one temporary row. The other rows stay below, in
    some order. Costs at most 3·m row copies.

    Examples
    --------
    >>> x = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    >>> gather_rows_(x, [3, 0]).flatten().tolist()
    [3.0, 0.0]
    >>> sorted(x.flatten().tolist())  # a permutation of the rows
    [0.0, 1.0, 2.0, 3.0]
    """
    check_matrix(x)
    order = [int(r) for r in (rows.tolist() if isinstance(rows, torch.Tensor) else rows)]
    n = x.shape[0]
    if len(set(order)) != len(order) or any(not 0 <= r < n for r in order):
        raise ValueError(f"rows must be distinct row indices in [0, {n}), got {order}")
    holds = list(range(n))  # holds[j]: the original row now in row j
    where = list(range(n))  # where[r]: the row now holding original row r
    tmp = None
    for i, r in enumerate(order):
        j = where[r]
        if j == i:
            continue
        if tmp is None:
            tmp = torch.empty_like(x[0])
        tmp.copy_(x[i])
        x[i].copy_(x[j])
        x[j].copy_(tmp)
        moved = holds[i]
        holds[i], holds[j] = r, moved
        where[r], where[moved] = i, j
    return x[: len(order)]
