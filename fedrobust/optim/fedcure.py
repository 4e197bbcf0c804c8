"""FED-CURE's server step: norm-thresholded mean of the clients' cubic steps, added.

Algorithm 1 of Ghosh, Maity and Mazumdar (2023), "FED-CURE: A Robust Federated Learning Algorithm with Cubic
Regularized Newton".

Sign convention: each client's s (:func:`~fedrobust.optim.cubic.cubic_step`) is already a
descent step, so the server *adds* η·mean_kept(s). The paper uses η = 1 and β = ψ + 2/m.
"""

from __future__ import annotations

import torch

from ._checks import check_positive, check_rows, check_vector
from .norm_threshold import norm_threshold_mean

__all__ = ["fedcure_step"]


def fedcure_step(
    x: torch.Tensor, steps: torch.Tensor, beta: float, eta: float, *, overwrite: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """x ← x + η·mean of the (1 − β) fraction of ``steps`` with the smallest norms.

    Parameters
    ----------
    x : torch.Tensor
        The global model, shape (d,).
    steps : torch.Tensor
        The clients' (decoded, possibly compressed) cubic steps Q(s_i), shape (n, d), on ``x``'s device.
    beta : float
        Fraction of clients dropped (largest norms), in [0, 1); ``floor(beta·n)`` go.
    eta : float
        Server step size η > 0.
    overwrite : bool
        Reorder the rows of ``steps`` in place instead of copying the kept ones
        (:func:`~fedrobust.optim.norm_threshold_mean`); the server passes its scratch matrix.

    Returns
    -------
    new_x : torch.Tensor
        The updated model, in ``x``'s dtype and device.
    kept : torch.Tensor
        int64 indices of the kept clients, smallest norm first.

    Examples
    --------
    >>> s = torch.tensor([[-1.0, 0.0], [-0.5, -0.5], [40.0, 30.0], [-1.0, -1.0]])
    >>> fedcure_step(torch.ones(2), s, beta=0.25, eta=1.0)
    (tensor([0.1667, 0.5000]), tensor([1, 0, 3]))
    """
    x = check_vector(x, "x")
    check_rows(steps, "steps", x)
    eta = check_positive(eta, "eta")
    step, kept = norm_threshold_mean(steps, beta, overwrite=overwrite)
    return x + eta * step.to(x.dtype), kept
