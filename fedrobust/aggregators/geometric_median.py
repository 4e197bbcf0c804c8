"""Geometric median by the Weiszfeld algorithm, with Vardi-Zhang's step at data points.

The geometric median ``argmin_y sum_i a_i ||y - x_i||`` has breakdown point 1/2: fewer than half
the (weighted) rows can move it only a bounded distance, however far they go.

Every Weiszfeld iterate is a convex combination ``y = sum_i c_i x_i`` of the rows, so the
iteration can run entirely on the coefficients ``c`` and the (n, n) Gram matrix of the rows
(``method="gram"``): the (n, d) matrix is read once to build the Gram matrix and once to form the
final combination. For many rows the Gram matrix costs more than a few passes over the data, and
each iteration instead reads the matrix once (``method="direct"``). The default picks by ``n``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from ..core.checks import all_finite, check_int, check_matrix
from ._chunks import column_blocks
from ._gram import central_row, centred_gram, combine, has_tiny_coefficients, sketch, typical_distance
from .mean import _check_weights

#: Above this many rows ``method="auto"`` iterates on the data instead of the Gram matrix.
GRAM_MAX_ROWS = 256


class GeometricMedian(NamedTuple):
    """Result of :func:`geometric_median`."""

    median: torch.Tensor
    """The approximate geometric median, shape (d,), in the input's dtype and device."""
    iterations: int
    """Weiszfeld iterations used."""
    objective: float
    """``sum_i a_i ||median - x_i||`` at the returned point (weights normalised to sum to 1)."""
    distances: torch.Tensor
    """``||median - x_i||`` for every row, float64, shape (n,) (see :func:`weiszfeld_weights`)."""


def geometric_median(
    x: torch.Tensor,
    weights: torch.Tensor | None = None,
    tol: float = 1e-9,
    max_iter: int = 1000,
    method: str = "auto",
) -> GeometricMedian:
    """Geometric median of the rows of ``x``.

    Runs the Weiszfeld iteration ``y <- sum_i (a_i / d_i) x_i / sum_i (a_i / d_i)`` with
    ``d_i = ||y - x_i||``, starting from the most central row (the medoid of a column sample). When
    the iterate coincides with rows, it takes Vardi and Zhang's modified step instead of dividing by
    zero, so it neither stalls at a row that is not the median nor leaves one that is.

    Parameters
    ----------
    x : torch.Tensor
        Client vectors, shape (n, d), floating point, on any device.
    weights : torch.Tensor, optional
        Non-negative row weights of shape (n,); uniform when omitted.
    tol : float
        Stop when one step moves the iterate by at most ``tol`` times the weighted harmonic mean
        of the distances from the iterate to the rows, ``1 / sum_i (a_i / d_i)``. The harmonic
        mean is set by the rows near the median, not by far outliers, and the rule is scale-free:
        multiplying ``x`` by a constant changes neither the iterations nor the relative accuracy.
    max_iter : int
        Iteration cap.
    method : {"auto", "gram", "direct"}
        ``"gram"`` iterates on the (n, n) Gram matrix (two reads of ``x`` in all); ``"direct"``
        reads ``x`` once per iteration, weighing the rows and forming the next iterate block by
        block, starting from the median of a column sample. ``"auto"`` uses ``"gram"`` for n <= ``GRAM_MAX_ROWS``.

    Returns
    -------
    GeometricMedian
        ``(median, iterations, objective)``.

    Examples
    --------
    >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1e6, 1e6]])
    >>> gm = geometric_median(x)
    >>> bool(gm.median.norm() < 2.0)  # the far outlier does not drag the median away
    True
    >>> geometric_median(torch.tensor([[1.0], [2.0], [10.0]])).median  # 1-D: the median
    tensor([2.])
    """
    check_matrix(x)
    if not (isinstance(tol, (int, float)) and tol > 0):
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    check_int(max_iter, "max_iter", low=1)
    if method not in ("auto", "gram", "direct"):
        raise ValueError(f"method must be one of 'auto', 'gram', 'direct', got {method!r}")
    n = x.shape[0]
    a = torch.full((n,), 1.0 / n, dtype=torch.float64, device=x.device)
    if weights is not None:
        a = _check_weights(weights, x)
        a = a / a.sum()
    if n == 1:
        return GeometricMedian(x[0].clone(), 0, 0.0, torch.zeros(1, dtype=torch.float64, device=x.device))
    if method == "gram" or (method == "auto" and n <= GRAM_MAX_ROWS):
        return _gram_weiszfeld(x, a, tol, max_iter)
    return _direct_weiszfeld(x, a, tol, max_iter)


def weiszfeld_weights(distances: torch.Tensor) -> torch.Tensor:
    """Weiszfeld weights of the rows at their median, from their distances, normalised to sum to 1.

    ``w_i ∝ 1 / max(d_i, 1e-6 · m)`` with ``m`` the median distance (the largest when the median
    is zero); uniform when every row sits at the median. Far rows (attackers) get little weight
    however far they are: BGMD uses the weights to average its residual memory.

    Examples
    --------
    >>> w = weiszfeld_weights(torch.tensor([1.5, 0.5, 0.5, 98.5], dtype=torch.float64))
    >>> [round(v, 3) for v in w.tolist()]
    [0.143, 0.428, 0.428, 0.002]
    """
    top = float(distances.max())
    if top == 0.0:
        return torch.full_like(distances, 1.0 / distances.numel())
    typical = float(distances.median())
    w = 1.0 / distances.clamp_min(1e-6 * (typical if typical > 0.0 else top))
    return w / w.sum()


def _next_coefficients(
    c: torch.Tensor, dist: torch.Tensor, a: torch.Tensor, eps: float, norm_of: Callable[[torch.Tensor], float]
) -> torch.Tensor | None:
    """One Weiszfeld step on the coefficients ``c`` of ``y = sum_i c_i x_i``, with Vardi-Zhang's
    rule when ``y`` sits on rows (distance <= ``eps``); None when every row sits at ``y``.

    ``norm_of(r)`` must return ``||sum_i r_i x_i||`` for coefficients ``r`` summing to zero.
    """
    at_iterate = dist <= eps
    inv = torch.where(at_iterate, torch.zeros_like(dist), a / dist.clamp(min=eps))
    total = inv.sum()
    if float(total) == 0.0:
        return None
    target = inv / total  # T(y), the plain Weiszfeld step
    eta = float(a[at_iterate].sum())
    if eta == 0.0:
        return target
    pull = norm_of(inv - total * c)  # ||R(y)|| = ||sum_i inv_i (x_i - y)||
    share = 1.0 if pull == 0.0 else min(1.0, eta / pull)
    return (1.0 - share) * target + share * c


def _harmonic_mean(dist: torch.Tensor, a: torch.Tensor, eps: float) -> float:
    """Weighted harmonic mean of the distances (zero when the iterate sits on a row)."""
    if bool((dist <= eps).any()):
        return 0.0
    return float(1.0 / (a / dist).sum())


def _gram_iterate(gram: torch.Tensor, a: torch.Tensor, tol: float, max_iter: int, start: int):
    """Weiszfeld on coefficients ``c`` (``y = sum_i c_i x_i``) given the Gram matrix of the rows.

    Returns ``(c, dist, iterations)``; ``dist`` are the distances from the final iterate.
    """
    n = gram.shape[0]
    diag = torch.diagonal(gram)
    c = torch.zeros(n, dtype=torch.float64, device=gram.device)
    c[start] = 1.0
    # The gram is centred on row ``start``: its diagonal holds the squared distances to it. Their
    # weighted median sets the scale of "sitting on a row" (a far minority cannot inflate it).
    scale = typical_distance(diag.clamp(min=0.0).sqrt(), a)
    if scale == 0.0:  # at least half the weight sits on the start row: it is the median
        return c, diag.clamp(min=0.0).sqrt(), 0
    eps = 1e-10 * scale

    def distances(c: torch.Tensor) -> torch.Tensor:
        kc = gram @ c
        return (c @ kc - 2.0 * kc + diag).clamp(min=0.0).sqrt()

    def norm_of(c: torch.Tensor) -> float:  # || sum_i c_i x_i || for coefficients summing to zero
        return float((c @ gram @ c).clamp(min=0.0).sqrt())

    dist = distances(c)
    iterations = 0
    for iterations in range(1, max_iter + 1):
        new = _next_coefficients(c, dist, a, eps, norm_of)
        if new is None:
            break
        step = norm_of(new - c)
        c = new
        dist = distances(c)
        if step <= tol * _harmonic_mean(dist, a, eps):
            break
    return c, dist, iterations


def _gram_weiszfeld(x: torch.Tensor, a: torch.Tensor, tol: float, max_iter: int) -> GeometricMedian:
    # Centre on the most central row (found on a column sample) and start there.
    start = central_row(x, a)
    c, dist, iterations = _gram_iterate(centred_gram(x, reference=start), a, tol, max_iter, start)
    return GeometricMedian(combine(x, c), iterations, float((a * dist).sum()), dist)


def _sweep(x: torch.Tensor, c: torch.Tensor, extra: list[torch.Tensor]) -> tuple[torch.Tensor, list[float]]:
    """One read of ``x`` in cache-sized column blocks.

    Returns the distances ``||x_i - y||`` from every row to ``y = sum_i c_i x_i`` (float64), and
    the norms ``||sum_i e_i x_i||`` of the combinations given in ``extra``. A block whose sums
    overflow the input's dtype, or whose coefficients the dtype would round away, is redone in
    float64 (see :mod:`fedrobust.aggregators._gram`).
    """
    stacked = torch.stack([c, *extra]).to(device=x.device, dtype=torch.float64)
    tiny = has_tiny_coefficients(stacked)
    coeffs = stacked.to(x.dtype)
    dist2 = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    norms2 = torch.zeros(len(extra), dtype=torch.float64, device=x.device)
    for _, block in column_blocks(x):
        d2, n2 = _sweep_block(block, stacked if tiny else coeffs)
        if not (all_finite(d2) and all_finite(n2)):
            d2, n2 = _sweep_block(block.to(torch.float64), stacked)
        # Block sums in the input's dtype (cache-sized, so accurate), accumulated in float64.
        dist2 += d2
        norms2 += n2
    return dist2.sqrt_(), norms2.sqrt_().tolist()


def _sweep_block(block: torch.Tensor, coeffs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    block = block.to(coeffs.dtype)
    combos = coeffs @ block
    return (block - combos[0]).pow_(2).sum(dim=1), combos[1:].pow(2).sum(dim=1)


def _direct_weiszfeld(x: torch.Tensor, a: torch.Tensor, tol: float, max_iter: int) -> GeometricMedian:
    # Start from the geometric median of a column sample: close to the answer, rarely on a row.
    sample = sketch(x)
    start = central_row(sample, a)
    c, _, _ = _gram_iterate(centred_gram(sample, reference=start), a, 1e-6, 100, start)
    dist, _ = _sweep(x, c, [])
    scale = typical_distance(dist, a)
    if scale == 0.0:  # every row, or at least half the weight, sits at the iterate
        return GeometricMedian(combine(x, c), 0, float((a * dist).sum()), dist)
    eps = 1e-10 * scale
    rounding = 4.0 * torch.finfo(x.dtype).eps
    iterations = 0
    def norm_of(r: torch.Tensor) -> float:  # only when the iterate sits on rows: one more read
        return _sweep(x, c, [r])[1][0]

    for iterations in range(1, max_iter + 1):
        new = _next_coefficients(c, dist, a, eps, norm_of)
        if new is None:
            break
        dist, (step, size) = _sweep(x, new, [new - c, new])
        c = new
        # The iterate is rounded to x's dtype: steps below that rounding level are noise.
        if step <= max(tol * _harmonic_mean(dist, a, eps), rounding * size):
            break
    return GeometricMedian(combine(x, c), iterations, float((a * dist).sum()), dist)
