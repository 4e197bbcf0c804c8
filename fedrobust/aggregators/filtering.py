"""CAF, the covariance-bound agnostic filter.

From Allouah, Guerraoui and Stephan (2025), "Towards Trustworthy Federated Learning with Untrusted
Participants" (ICML), the citation of ByzFL's ``CAF``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ..core.checks import check_int, check_matrix
from ._gram import centred_gram, combine


class FilterResult(NamedTuple):
    """What :func:`caf_weights` returns."""

    weights: torch.Tensor
    """The aggregate's convex weights over the rows, float64, shape (n,)."""
    eigenvalue: float
    """The largest eigenvalue of the weighted covariance at the returned weights."""
    iterations: int
    """Filtering steps run."""


def caf_weights(x: torch.Tensor, f: int) -> FilterResult:
    """The weights of CAF's aggregate: see :func:`caf`.

    Examples
    --------
    >>> x = torch.tensor([[0.0], [1.0], [2.0], [3.0], [40.0]])
    >>> out = caf_weights(x, 1)
    >>> [round(w, 4) for w in out.weights.tolist()], out.iterations
    ([0.2432, 0.2481, 0.2524, 0.2562, 0.0], 2)
    """
    check_matrix(x)
    n = x.shape[0]
    check_int(f, "f", low=0)
    if 2 * f >= n:
        raise ValueError(f"CAF needs 2f < n, got f={f} with n={n} rows")
    gram = centred_gram(x)  # <x_i - x_r, x_j - x_r> for a central row r
    c = torch.ones(n, dtype=torch.float64, device=x.device)
    best, best_value, iterations = c / n, float("inf"), 0
    while float(c.sum()) > n - 2 * f:
        iterations += 1
        total = c.sum()
        w = c / total
        a = gram @ w
        # B = Y Y^T for the rows Y_i = x_i - mu_c, from the Gram matrix alone.
        b = gram - a[:, None] - a[None, :] + w @ a
        root = c.sqrt()
        values, vectors = torch.linalg.eigh(root[:, None] * b * root[None, :] / total)
        top = float(values[-1])
        if top < best_value:
            best, best_value = w, top
        if top <= 0.0:  # every weighted row equals mu_c: no smaller covariance exists
            break
        # ((x_i - mu_c) . v)^2 for the top eigenvector v = Y^T C^(1/2) u / sqrt(total * top).
        tau = (b @ (root * vectors[:, -1])).square_() / (total * top)
        tau_max = tau[c > 0].max()
        if not float(tau_max) > 0.0:
            break
        c = c * (1.0 - tau / tau_max).clamp_(min=0.0)
    return FilterResult(best, max(best_value, 0.0), iterations)


def caf(x: torch.Tensor, f: int) -> torch.Tensor:
    """CAF, the covariance-bound agnostic filter (Allouah, Guerraoui and Stephan, 2025, "Towards
    Trustworthy Federated Learning with Untrusted Participants").

    With weights ``c_i = 1``, repeat while ``sum c_i > n - 2f``: ``mu_c`` the ``c``-weighted mean,
    ``v`` and ``lambda`` the top eigenpair of the weighted covariance
    ``Sigma_c = sum c_i (x_i - mu_c)(x_i - mu_c)^T / sum c_i``, ``tau_i = ((x_i - mu_c) . v)^2``,
    and ``c_i <- c_i (1 - tau_i / tau_max)``. The result is the ``mu_c`` of smallest ``lambda``
    met.

    The d x d covariance is never formed: ``Sigma_c`` has the nonzero eigenvalues of the n x n
    matrix ``C^(1/2) Y Y^T C^(1/2) / sum c`` (``Y_i = x_i - mu_c``, ``C = diag(c)``), and ``Y Y^T``
    and the projections ``Y v`` follow from one scale-safe Gram matrix
    (:func:`~fedrobust.aggregators._gram.centred_gram`); the eigenpair is exact
    (``torch.linalg.eigh``), and the aggregate a convex combination of the rows
    (:func:`~fedrobust.aggregators._gram.combine`).

    Convention differences from ByzFL 0.0.11's ``CAF``: (1) ByzFL estimates ``v`` with a single
    power-iteration step from a fresh random vector, so its output is random for d > 1; the paper
    calls for the top eigenvector, computed exactly here. (2) ByzFL takes ``tau_max`` over all rows,
    including those whose weight is already zero; a far row, once zeroed, then keeps the largest
    ``tau`` and every later step barely lowers the other weights (with a row at 1e20 its loop never
    ends in floating point). Here ``tau_max`` is over the rows of positive weight, as in the
    filters of Diakonikolas et al., so each step zeroes at least one more row and the loop runs at
    most ``n`` times.

    Parameters
    ----------
    x : torch.Tensor
        Client vectors, shape (n, d).
    f : int
        Assumed number of Byzantine rows, ``2f < n``.

    Returns
    -------
    torch.Tensor
        Shape (d,).

    Examples
    --------
    >>> caf(torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]), 1)  # as ByzFL's CAF(1)
    tensor([4., 5., 6.])
    >>> caf(torch.tensor([[0.0], [1.0], [2.0], [3.0], [40.0]]), 1)  # 40 zeroed, then the others reweighted
    tensor([1.5217])
    """
    return combine(x, caf_weights(x, f).weights)
