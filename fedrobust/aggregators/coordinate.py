"""Coordinate-wise robust statistics: the median and the trimmed mean.

Both as analysed by Yin, Chen, Ramchandran and Bartlett (2018), "Byzantine-Robust Distributed Learning:
Towards Optimal Statistical Rates" (ICML).
"""

from __future__ import annotations

import torch

from . import _sortnet
from ..core.checks import check_fraction, check_matrix


def _middle_mean(x: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    """Per column, the mean of the order statistics ``lo..hi-1``."""
    if _sortnet.can_use(x):
        return _sortnet.middle_mean(x, lo, hi)
    ordered = torch.sort(x, dim=0).values
    return ordered[lo:hi].mean(dim=0)


def coordinate_median(x: torch.Tensor) -> torch.Tensor:
    """Coordinate-wise median of the rows of ``x``.

    For an even number of rows this is the mean of the two middle values, as in ``numpy.median``.
    On the CPU with numba installed, a compiled kernel computes it (a sorting network for up to
    ``fedrobust.aggregators._sortnet.MAX_ROWS`` rows, counting selection steps beyond; where NumPy
    sorts with AVX-512, NumPy's sort of each column from 33 rows up to 512 float32 or 256 float64
    values); otherwise ``torch.sort`` does (also on GPUs, where it is fast). Inputs must be finite
    (client messages are validated before aggregation).

    Parameters
    ----------
    x : torch.Tensor
        Client vectors, shape (n, d).

    Returns
    -------
    torch.Tensor
        Shape (d,), on ``x``'s device.

    Examples
    --------
    >>> coordinate_median(torch.tensor([[1.0, 5.0], [2.0, -1.0], [100.0, 0.0]]))
    tensor([2., 0.])
    >>> coordinate_median(torch.tensor([[1.0], [2.0], [3.0], [100.0]]))
    tensor([2.5000])
    """
    check_matrix(x)
    n = x.shape[0]
    return _middle_mean(x, (n - 1) // 2, n // 2 + 1)


def trimmed_mean(x: torch.Tensor, beta: float) -> torch.Tensor:
    """Coordinate-wise trimmed mean: per coordinate, drop the ``floor(beta * n)`` largest and
    smallest values and average the rest.

    Parameters
    ----------
    x : torch.Tensor
        Client vectors, shape (n, d).
    beta : float
        Fraction trimmed from *each* side, in [0, 0.5) (so at least one value always remains).

    Returns
    -------
    torch.Tensor
        Shape (d,), on ``x``'s device.

    Examples
    --------
    >>> x = torch.tensor([[1.0], [2.0], [3.0], [4.0], [1000.0]])
    >>> trimmed_mean(x, 0.2)
    tensor([3.])
    >>> trimmed_mean(x, 0.0)
    tensor([202.])
    """
    check_matrix(x)
    beta = check_fraction(beta, "beta")
    n = x.shape[0]
    b = int(beta * n)
    return _middle_mean(x, b, n - b)
