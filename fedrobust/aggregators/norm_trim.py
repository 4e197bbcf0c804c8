"""Norm thresholding: keep the clients whose vectors have the smallest norms, and their mean.

The thresholding of Ghosh, Maity, Kadhe, Mazumdar and Ramchandran (2021), "Communication-Efficient
and Byzantine-Robust Distributed Learning with Error Feedback".
"""

from __future__ import annotations

import torch

from ..core.checks import check_fraction, check_matrix
from ._gram import row_norms
from ._rows import gather_rows_


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


def norm_threshold_mean(
    messages: torch.Tensor, beta: float, norms: torch.Tensor | None = None, *, overwrite: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of the rows kept by norm thresholding, and their indices.

    Parameters
    ----------
    messages : torch.Tensor
        Client messages, shape (n, d).
    beta : float
        Fraction of rows dropped (the largest norms), in [0, 1); ``floor(beta·n)`` rows go.
    norms : torch.Tensor, optional
        Reported norms (n,) to rank by (Option I); default: the rows' own ℓ2 norms (Option II).
    overwrite : bool
        Move the kept rows to the top of ``messages`` in place (rows reordered) instead of copying
        them out: the same mean, bit for bit, without an (n − floor(β·n)) × d copy on the server.

    Returns
    -------
    mean : torch.Tensor
        Mean of the kept rows, shape (d,), in ``messages``' dtype and device.
    kept : torch.Tensor
        int64 indices of the kept rows, smallest norm first.

    Examples
    --------
    >>> m = torch.tensor([[1.0, 0.0], [0.0, 3.0], [100.0, 100.0]])
    >>> norm_threshold_mean(m, beta=1 / 3)
    (tensor([0.5000, 1.5000]), tensor([0, 1]))
    """
    kept = norm_trim(messages, beta, norms=norms)
    if overwrite and messages.is_contiguous():
        return gather_rows_(messages, kept).mean(dim=0), kept
    return messages.index_select(0, kept).mean(dim=0), kept
