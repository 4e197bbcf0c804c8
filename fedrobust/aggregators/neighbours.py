"""MoNNA: the mean of a pivot row's nearest neighbours.

From Farhadkhani, Guerraoui, Gupta, Hoang, Pinot and Stephan (2023), "Robust Collaborative
Learning with Linear Gradient Overhead" (ICML).
"""

from __future__ import annotations

import torch

from ..core.checks import check_int, check_matrix
from ._gram import centred_gram, combine, squared_distances


def medoid(distances: torch.Tensor) -> int:
    """The row with the smallest sum of Euclidean distances to all rows (the lowest index on ties),
    given the squared distances.

    Examples
    --------
    >>> x = torch.tensor([[0.0], [1.0], [3.0], [100.0]], dtype=torch.float64)
    >>> medoid((x - x.T) ** 2)
    1
    """
    return int(torch.argmin(distances.sqrt().sum(dim=1)))


def pivot_squared_distances(x: torch.Tensor, pivot: int) -> torch.Tensor:
    """``‖x_i − x_pivot‖²`` for every row, in float64: one pass over ``x``, by column blocks that
    stay in cache (the differences are formed in float64, so ±3e38 rows neither overflow nor lose
    a tight cluster's digits to cancellation).

    Examples
    --------
    >>> d = pivot_squared_distances(torch.tensor([[0.0, 0.0], [3.0, 4.0], [3e38, -3e38]]), 0)
    >>> d[:2].tolist(), f"{float(d[2]):.3e}"  # 2 x (3e38 in float32)^2
    ([0.0, 25.0], '1.800e+77')
    """
    n, d = x.shape
    block = max(1024, (1 << 18) // max(n, 1))
    out = torch.zeros(n, dtype=torch.float64, device=x.device)
    for j in range(0, d, block):
        part = x[:, j : j + block].to(torch.float64)
        out += (part - part[pivot]).square_().sum(dim=1)
    return out


def monna_select(x: torch.Tensor, f: int, pivot: int = -1) -> torch.Tensor:
    """Indices of the ``n - f`` rows nearest to the pivot row (the pivot included), nearest first
    (equally near rows by index).

    Parameters
    ----------
    x : torch.Tensor
        Client vectors, shape (n, d).
    f : int
        Rows left out, ``2f < n``.
    pivot : int
        The trusted row's index in ``x`` (ByzFL's ``idx``), or -1 for the medoid: the row with the
        smallest sum of distances to all rows, which is an honest row's neighbourhood whenever the
        honest rows form a tight majority.

    Examples
    --------
    >>> x = torch.tensor([[0.0], [1.0], [3.0], [100.0]])
    >>> monna_select(x, 1, pivot=0).tolist(), monna_select(x, 1).tolist()
    ([0, 1, 2], [1, 0, 2])
    """
    check_matrix(x)
    n = x.shape[0]
    check_int(f, "f", low=0)
    check_int(pivot, "pivot", low=-1)
    if 2 * f >= n:
        raise ValueError(f"MoNNA needs 2f < n, got f={f} with n={n} rows")
    if pivot >= n:
        raise ValueError(f"MoNNA's pivot must be a row index below n={n} (or -1: the medoid), got {pivot}")
    if pivot < 0:  # the medoid needs every pair: the Gram matrix
        dist = squared_distances(centred_gram(x))
        pivot = medoid(dist)
        row = dist[pivot].clone()
    else:  # one row's distances: a single pass, no n x n product
        row = pivot_squared_distances(x, pivot)
    row[pivot] = -1.0  # the pivot first, even when another row equals it
    return torch.argsort(row, stable=True)[: n - f]  # ties: the lowest index


def monna(x: torch.Tensor, f: int, pivot: int = -1) -> torch.Tensor:
    """MoNNA (Farhadkhani et al., 2023, "Robust Collaborative Learning with Linear Gradient
    Overhead"): the mean of the ``n - f`` rows nearest to a trusted pivot row, itself included.

    In the paper (and ByzFL's ``MoNNA(f, idx)``) the pivot is the vector of the honest worker that
    aggregates, in a peer-to-peer setting. A federated server has no vector of its own, so by
    default (``pivot = -1``) the pivot is the medoid of the rows (:func:`medoid`); ``pivot = i``
    uses row ``i`` as ByzFL's ``idx = i`` does. The medoid's distances come from a scale-safe Gram
    matrix (:func:`~fedrobust.aggregators._gram.centred_gram`); a given pivot's from one pass over
    the rows (:func:`pivot_squared_distances`).

    Parameters
    ----------
    x : torch.Tensor
        Client vectors, shape (n, d).
    f : int
        Rows left out, ``2f < n``.
    pivot : int
        Index of the trusted row, or -1 (default): the medoid.

    Returns
    -------
    torch.Tensor
        Shape (d,).

    Examples
    --------
    >>> x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    >>> monna(x, 1, pivot=1)  # ByzFL's MoNNA(1, 1)
    tensor([2.5000, 3.5000, 4.5000])
    >>> monna(torch.tensor([[0.0], [1.0], [3.0], [100.0]]), 1)  # medoid row 1: rows 1, 0, 2
    tensor([1.3333])
    """
    chosen = monna_select(x, f, pivot)
    weights = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    weights[chosen] = 1.0 / chosen.numel()
    return combine(x, weights)
