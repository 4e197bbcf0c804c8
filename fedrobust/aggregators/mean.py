"""The plain mean (FedAvg / SGD aggregation): not robust, the baseline."""

from __future__ import annotations

import torch

from ..core.checks import check_matrix


def mean(x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Coordinate-wise (weighted) mean of the rows of ``x``.

    Parameters
    ----------
    x : torch.Tensor
        Client vectors, shape (n, d).
    weights : torch.Tensor, optional
        Non-negative weights of shape (n,), e.g. numbers of examples; uniform when omitted.

    Returns
    -------
    torch.Tensor
        The mean, shape (d,), on ``x``'s device and dtype.

    Examples
    --------
    >>> import torch
    >>> mean(torch.tensor([[1.0, 2.0], [3.0, 6.0]]))
    tensor([2., 4.])
    >>> mean(torch.tensor([[1.0, 2.0], [3.0, 6.0]]), weights=torch.tensor([3.0, 1.0]))
    tensor([1.5000, 3.0000])
    """
    check_matrix(x)
    if weights is None:
        return x.mean(dim=0)
    w = _check_weights(weights, x)
    return (w / w.sum()).to(x.dtype) @ x


def _check_weights(weights: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    w = torch.as_tensor(weights, device=x.device, dtype=torch.float64)
    if w.shape != (x.shape[0],):
        raise ValueError(f"weights must have shape ({x.shape[0]},), got {tuple(w.shape)}")
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or float(w.sum()) <= 0:
        raise ValueError("weights must be finite, non-negative and not all zero")
    return w
