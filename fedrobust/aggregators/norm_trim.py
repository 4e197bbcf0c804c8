"""Norm thresholding: keep the clients whose vectors have the smallest norms.

This is the Byzantine filter of Ghosh, Maity, Kadhe, Mazumdar and Ramchandran (2021), "Communication-Efficient
and Byzantine-Robust Distributed Learning with Error Feedback" (IEEE JSAIT).
"""

from __future__ import annotations

import torch

from .._checks import check_fraction, check_matrix
from ._gram import row_norms


def norm_trim(x: torch.Tensor, beta: float, norms: torch.Tensor | None = None) -> torch.Tensor:
    """Indices of the ``n - floor(beta * n)`` rows with the smallest l2 norms, smallest first.

    Parameters
    ----------
    x : torch.Tensor
        Client vectors, shape (n, d).
    beta : float
        Fraction of rows dropped, in [0, 1); ties are broken by row index.
    norms : torch.Tensor, optional
        Norms to rank by, shape (n,), instead of the rows' own norms (Option I of Ghosh et al., 2021 ranks by
        the norm of the uncompressed gradient each client reports). Must be finite.

    Returns
    -------
    torch.Tensor
        int64 indices of the kept rows, shape (n - floor(beta * n),).

    Examples
    --------
    >>> x = torch.tensor([[3.0, 4.0], [0.0, 1.0], [100.0, 0.0], [1.0, 1.0]])
    >>> norm_trim(x, 0.25).tolist()
    [1, 3, 0]
    >>> norm_trim(x, 0.5, norms=torch.tensor([1.0, 9.0, 0.5, 2.0])).tolist()
    [2, 0]
    """
    check_matrix(x)
    beta = check_fraction(beta, "beta", upper=1.0)
    n = x.shape[0]
    if norms is None:
        norms = row_norms(x)  # float64, finite for any finite row: +Inf never ties with +Inf
    else:
        norms = torch.as_tensor(norms, device=x.device)
        if norms.shape != (n,):
            raise ValueError(f"norms must have shape ({n},), got {tuple(norms.shape)}")
        if not bool(torch.isfinite(norms).all()):
            raise ValueError("norms must be finite")
    keep = n - int(beta * n)
    order = torch.argsort(norms.to(torch.float64), stable=True)
    return order[:keep]
