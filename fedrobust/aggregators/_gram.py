"""Gram matrices, row norms and combinations of client vectors that no finite row can break.

Several aggregators (geometric median, Krum, norm thresholding) only need inner products or norms
of rows. Computing the (n, n) Gram matrix reads the (n, d) matrix once; everything after that runs
on n x n numbers.

**Scale safety.** An attacker controls every byte of its row, so a row may hold any finite float32
value, up to 3.4e38. Squares of such entries overflow float32 (anything above 1.8e19 does), and a
Gram matrix centred on the mean row, which such a row drags far away, loses the inliers' distances
to rounding. Here, therefore:

- rows are centred on a *central* row (:func:`central_row`: the medoid of a column sample, found in
  float64 around the coordinate-wise median, which no minority can move far), so the inliers'
  inner products involve inlier rows only and are exact to rounding whatever the outliers hold;
- products are formed in the input's dtype for speed, and a column block whose products overflow
  is redone in float64 (float64 holds the square of any float32 value times any realistic ``d``);
- row norms and coefficient combinations fall back to float64 the same way.

On ordinary inputs every result is what the plain float32 computation gives.
"""

from __future__ import annotations

import torch

from ..core.checks import all_finite

from . import _sortnet
from ._chunks import BLOCK_ELEMENTS, column_blocks

# Columns sampled to find a central row before the main computation.
SKETCH_COLUMNS = 4096
# Nonzero combination coefficients below this are subnormal (or close) in float32: combine in float64.
_TINY_COEFFICIENT = 1e-30


def _centred_product(block: torch.Tensor, reference: int, dtype: torch.dtype, scratch: torch.Tensor) -> torch.Tensor:
    """``(block - block[reference]) @ (...).T`` in ``dtype``, as float64.

    ``scratch`` (``dtype``, at least ``block.numel()`` elements) receives the centred block. One
    buffer reused for every block of a matrix keeps the centring in cache-warm memory, where a
    fresh block-sized tensor per block may cost the first touch of its pages each time (measured
    at n = 32, d = 1.16M, 2 CPU cores: the centred Gram matrix in 33 ms against 37 ms, and the
    whole geometric median in 43-45 ms against 54-67 ms in fresh processes).
    """
    n, w = block.shape
    b = scratch[: n * w].view(n, w)  # contiguous, as a fresh tensor would be: the same product
    if block.dtype == dtype:
        torch.sub(block, block[reference : reference + 1], out=b)
    else:
        b.copy_(block)
        b.sub_(b[reference : reference + 1].clone())
    return (b @ b.T).to(torch.float64)


def _lower_median(s: torch.Tensor) -> torch.Tensor:
    """Per column, the lower median of the rows (the value ``torch.median`` gives), shape (1, d).

    The compiled sorting network of :mod:`~fedrobust.aggregators._sortnet` finds it when it
    applies: about 0.2 ms for a 32-row sketch against 1.3-1.6 ms for ``torch.median`` over dim 0.
    A median is one of the values, so both give the same number.

    Examples
    --------
    >>> _lower_median(torch.tensor([[1.0, 4.0], [3.0, 2.0], [2.0, 9.0], [8.0, 0.0]]))
    tensor([[2., 2.]])
    """
    if _sortnet.can_use(s):
        lo = (s.shape[0] - 1) // 2
        return _sortnet.middle_mean(s, lo, lo + 1).to(s.device)[None, :]
    return s.median(dim=0, keepdim=True).values


def sketch(x: torch.Tensor, columns: int = SKETCH_COLUMNS) -> torch.Tensor:
    """An evenly strided sample of about ``columns`` columns of ``x``.

    Examples
    --------
    >>> sketch(torch.zeros(3, 10_000)).shape
    torch.Size([3, 5000])
    """
    return x[:, :: max(1, x.shape[1] // columns)]


def central_row(x: torch.Tensor, weights: torch.Tensor | None = None) -> int:
    """Index of a central row of ``x``: the (weighted) medoid of a column sample.

    The sample is centred on its coordinate-wise median and its Gram matrix formed in float64, so
    the medoid is found correctly whatever finite values a minority of rows hold: a row far from
    the others has a large sum of distances and is never chosen while most rows are close together.

    Parameters
    ----------
    x : torch.Tensor
        Rows, shape (n, d).
    weights : torch.Tensor, optional
        Non-negative row weights (float64, shape (n,)); uniform when omitted.

    Examples
    --------
    >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [3e38, -3e38]])
    >>> central_row(x) in (0, 1, 2)
    True
    """
    raw = sketch(x).contiguous()  # one gather of the strided sample
    s = raw.to(torch.float64)
    s = s - _lower_median(raw).to(torch.float64)
    dist = squared_distances(s @ s.T).sqrt_()
    if weights is not None:
        dist = dist * weights.to(dist)[None, :]
    return int(dist.sum(dim=1).argmin())


def centred_gram(
    x: torch.Tensor, reference: int | None = None, block_elements: int = BLOCK_ELEMENTS
) -> torch.Tensor:
    """Gram matrix of the rows of ``x`` after centring on one of its rows, accumulated in float64.

    Within each chunk of columns the rows are centred on row ``reference`` (by default the
    :func:`central_row`) before the product, and the chunk's products are summed in float64.
    Pairwise distances derived from the result do not suffer from the cancellation that an
    uncentred float32 Gram matrix shows when the rows form a tight cluster far from the origin, and
    an inlier centre keeps the inliers' inner products exact to rounding however far other rows
    lie. A chunk whose products overflow the input's dtype is redone in float64. Centring leaves
    every distance unchanged.

    Parameters
    ----------
    x : torch.Tensor
        Rows of shape (n, d).
    reference : int, optional
        The row to centre on; :func:`central_row` when omitted.
    block_elements : int
        Size of the column blocks processed per product (see :func:`column_blocks`).

    Returns
    -------
    torch.Tensor
        ``K`` of shape (n, n), float64, on ``x``'s device, with
        ``K[i, j] = <x_i - c, x_j - c>`` for the centre ``c = x[reference]``.

    Examples
    --------
    >>> x = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    >>> centred_gram(x, reference=0)
    tensor([[0., 0.],
            [0., 4.]], dtype=torch.float64)
    >>> big = torch.tensor([[0.0], [1.0], [2.0], [3e38]])
    >>> f"{float(squared_distances(centred_gram(big))[3, 0]):.3e}"  # (3e38)^2, no overflow
    '9.000e+76'
    """
    n = x.shape[0]
    if reference is None:
        reference = central_row(x)
    compute_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    blocks = list(column_blocks(x, block_elements))
    scratch = torch.empty(blocks[0][1].numel(), dtype=compute_dtype, device=x.device) if blocks else None
    wide = None  # the float64 buffer, made when a block first overflows
    gram = torch.zeros(n, n, dtype=torch.float64, device=x.device)
    for _, block in blocks:
        product = _centred_product(block, reference, compute_dtype, scratch)
        if not all_finite(product):
            # An outlier's squares (or its differences near ±3.4e38) overflow float32: redo in float64.
            if wide is None:
                wide = torch.empty(scratch.numel(), dtype=torch.float64, device=x.device)
            product = _centred_product(block, reference, torch.float64, wide)
        gram += product
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


def row_norms(x: torch.Tensor, block_elements: int = BLOCK_ELEMENTS) -> torch.Tensor:
    """The l2 norm of every row of ``x``, float64, finite for any finite ``x``.

    One fused reduction in ``x``'s dtype answers when no norm overflows it; otherwise squares are
    summed per column block, and a block whose sums overflow is redone in float64, so a row of entries near 3.4e38 gets its true norm, not +Inf, and norms are compared
    without squaring in float32.

    Examples
    --------
    >>> [f"{v:.4e}" for v in row_norms(torch.tensor([[3.0, 4.0], [3e38, 3e38]])).tolist()]
    ['5.0000e+00', '4.2426e+38']
    """
    if x.dtype != torch.float64:  # one fused reduction unless a square overflows x's dtype
        fast = torch.linalg.vector_norm(x, dim=1)
        if all_finite(fast):
            return fast.to(torch.float64)
    total = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    for _, block in column_blocks(x, block_elements):
        sums = block.pow(2).sum(dim=1)
        if not all_finite(sums):
            sums = block.to(torch.float64).pow(2).sum(dim=1)
        total += sums.to(torch.float64)
    return total.sqrt_()


def has_tiny_coefficients(coefficients: torch.Tensor) -> bool:
    """Whether a nonzero coefficient is so small that float32 would round it (subnormal or close):
    combinations with such weights are formed in float64.

    Examples
    --------
    >>> has_tiny_coefficients(torch.tensor([0.0, 0.5])), has_tiny_coefficients(torch.tensor([1e-40, 1.0], dtype=torch.float64))
    (False, True)
    """
    nonzero = coefficients[coefficients != 0].abs()
    return nonzero.numel() > 0 and float(nonzero.min()) < _TINY_COEFFICIENT


def combine(x: torch.Tensor, coefficients: torch.Tensor, block_elements: int = BLOCK_ELEMENTS) -> torch.Tensor:
    """``sum_i coefficients[i] * x[i]`` in ``x``'s dtype: one streaming read of ``x``.

    For non-negative coefficients summing to one (a convex combination, as every Weiszfeld iterate
    is) the result cannot overflow. Coefficients so small that float32 would round them (far
    outliers get weights of 1e-40 and below, yet their ``weight * row`` is of ordinary size) and
    combinations that overflow the input's dtype are formed in float64, block by block.

    Examples
    --------
    >>> combine(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([0.5, 0.5], dtype=torch.float64))
    tensor([2., 3.])
    >>> far = torch.tensor([[0.0], [3e38]])
    >>> combine(far, torch.tensor([1.0 - 1e-39, 1e-39], dtype=torch.float64))
    tensor([0.3000])
    """
    c = coefficients.to(device=x.device)
    if x.dtype == torch.float64:
        return c.to(torch.float64) @ x
    if not has_tiny_coefficients(c):
        out = c.to(x.dtype) @ x
        if all_finite(out):
            return out
    out = torch.empty(x.shape[1], dtype=x.dtype, device=x.device)
    c64 = c.to(torch.float64)
    for start, block in column_blocks(x, block_elements):
        out[start : start + block.shape[1]] = c64 @ block.to(torch.float64)
    return out


def typical_distance(distances: torch.Tensor, weights: torch.Tensor) -> float:
    """The weighted median of ``distances``: a scale of the rows that no minority can inflate.

    Examples
    --------
    >>> d = torch.tensor([0.0, 1.0, 2.0, 1e30], dtype=torch.float64)
    >>> typical_distance(d, torch.full((4,), 0.25, dtype=torch.float64))
    1.0
    """
    order = torch.argsort(distances)
    cumulative = torch.cumsum(weights[order], dim=0)
    half = 0.5 * float(cumulative[-1])
    position = int(torch.searchsorted(cumulative, torch.tensor(half, dtype=cumulative.dtype, device=cumulative.device)))
    return float(distances[order[min(position, distances.numel() - 1)]])
