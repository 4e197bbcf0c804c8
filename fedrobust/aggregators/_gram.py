"""Centred Gram matrices of client vectors, accumulated in float64.

Several aggregators (geometric median, Krum) only need inner products between rows. Computing
the (n, n) Gram matrix reads the (n, d) matrix once; everything after that runs on n x n numbers.
"""

from __future__ import annotations

import torch

from ._chunks import BLOCK_ELEMENTS, column_blocks


def centred_gram(
    x: torch.Tensor, reference: int | None = None, block_elements: int = BLOCK_ELEMENTS
) -> torch.Tensor:
    """Gram matrix of the rows of ``x`` after centring, accumulated in float64.

    Within each chunk of columns the rows are centred (on their mean, or on row ``reference``)
    before the product, and the chunk's products are summed in float64. Pairwise distances derived from the result do not
    suffer from the cancellation that an uncentred float32 Gram matrix shows when the rows form a
    tight cluster far from the origin. Centring leaves every distance unchanged.

    Parameters
    ----------
    x : torch.Tensor
        Rows of shape (n, d).
    reference : int, optional
        Centre on this row instead of the mean row. A central row (an inlier) is the better centre
        when a few rows lie very far away: it keeps the inliers' distances exact to rounding.
    block_elements : int
        Size of the column blocks processed per product (see :func:`column_blocks`).

    Returns
    -------
    torch.Tensor
        ``K`` of shape (n, n), float64, on ``x``'s device, with
        ``K[i, j] = <x_i - c, x_j - c>`` for the centre ``c``.

    Examples
    --------
    >>> x = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    >>> centred_gram(x)
    tensor([[ 1., -1.],
            [-1.,  1.]], dtype=torch.float64)
    """
    n = x.shape[0]
    gram = torch.zeros(n, n, dtype=torch.float64, device=x.device)
    compute_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    for _, block in column_blocks(x, block_elements):
        block = block.to(compute_dtype)
        centre = block.mean(dim=0, keepdim=True) if reference is None else block[reference : reference + 1]
        block = block - centre
        gram += (block @ block.T).to(torch.float64)
    return gram


def squared_distances(gram: torch.Tensor) -> torch.Tensor:
    """Pairwise squared distances ``||x_i - x_j||^2`` from a Gram matrix, clamped at zero.

    Examples
    --------
    >>> squared_distances(torch.tensor([[1.0, -1.0], [-1.0, 1.0]], dtype=torch.float64))
    tensor([[0., 4.],
            [4., 0.]], dtype=torch.float64)
    """
    diag = torch.diagonal(gram)
    return (diag[:, None] + diag[None, :] - 2.0 * gram).clamp_(min=0.0)


def combine(x: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
    """``sum_i coefficients[i] * x[i]`` in ``x``'s dtype: one streaming read of ``x``.

    Examples
    --------
    >>> combine(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([0.5, 0.5], dtype=torch.float64))
    tensor([2., 3.])
    """
    return coefficients.to(dtype=x.dtype, device=x.device) @ x
