"""Krum and multi-Krum.

From Blanchard, El Mhamdi, Guerraoui and Stainer (2017), "Machine Learning with Adversaries: Byzantine
Tolerant Gradient Descent" (NeurIPS).
"""

from __future__ import annotations

import torch

from ..core.checks import check_int, check_matrix
from ._gram import centred_gram, squared_distances


def krum_scores(x: torch.Tensor, f: int) -> torch.Tensor:
    """Krum score of every row: the sum of its squared distances to its ``n - f - 2`` nearest
    other rows.

    Parameters
    ----------
    x : torch.Tensor
        Client vectors, shape (n, d).
    f : int
        Assumed number of Byzantine rows; Krum requires ``2 * f + 2 < n``.

    Returns
    -------
    torch.Tensor
        Scores, shape (n,), float64.

    Examples
    --------
    >>> x = torch.tensor([[0.0], [1.0], [2.0], [3.0], [50.0]])
    >>> krum_scores(x, 1).argmin().item()
    1
    """
    check_matrix(x)
    n = x.shape[0]
    check_int(f, "f", low=0)
    if 2 * f + 2 >= n:
        raise ValueError(f"Krum needs 2*f + 2 < n, got f={f} with n={n} rows")
    # Centred on a central row (an inlier): float32 rounding stays at the inliers' scale however
    # far the other rows lie, and overflowing products are redone in float64.
    dist = squared_distances(centred_gram(x))
    dist.fill_diagonal_(float("inf"))
    nearest = torch.topk(dist, n - f - 2, dim=1, largest=False).values
    return nearest.sum(dim=1)


def krum_select(x: torch.Tensor, f: int, m: int = 1) -> torch.Tensor:
    """Indices of the ``m`` rows with the lowest Krum scores, best first.

    Examples
    --------
    >>> x = torch.tensor([[0.0], [1.0], [2.0], [3.0], [50.0]])
    >>> krum_select(x, f=1, m=2).tolist()
    [1, 2]
    """
    scores = krum_scores(x, f)
    check_int(m, "m", low=1, high=x.shape[0] - f)
    return torch.topk(scores, m, largest=False).indices


def krum(x: torch.Tensor, f: int, m: int = 1) -> torch.Tensor:
    """Krum (``m = 1``) or multi-Krum (``m > 1``): the mean of the ``m`` best-scored rows.

    Parameters
    ----------
    x : torch.Tensor
        Client vectors, shape (n, d).
    f : int
        Assumed number of Byzantine rows, ``2 * f + 2 < n``.
    m : int
        Number of rows averaged, ``1 <= m <= n - f``.

    Returns
    -------
    torch.Tensor
        Shape (d,), on ``x``'s device.

    Examples
    --------
    >>> x = torch.tensor([[0.0], [1.0], [2.0], [3.0], [50.0]])
    >>> krum(x, f=1)
    tensor([1.])
    >>> krum(x, f=1, m=2)
    tensor([1.5000])
    """
    chosen = krum_select(x, f, m)
    if m == 1:
        return x[int(chosen[0])].clone()
    return x.index_select(0, chosen).mean(dim=0)
