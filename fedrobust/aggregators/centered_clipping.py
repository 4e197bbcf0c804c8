"""Centered clipping.

From Karimireddy, He and Jaggi (2021), "Learning from History for Byzantine Robust Optimization"
(ICML).
"""

from __future__ import annotations

import torch

from ..core.checks import all_finite, check_int, check_matrix, check_positive, check_vector
from ._gram import combine, row_norms
from .preaggregation import _clip_to

__all__ = ["centered_clipping"]


def centered_clipping(
    x: torch.Tensor, center: torch.Tensor | None, tau: float, iterations: int = 1
) -> torch.Tensor:
    """Centered clipping: ``v ← v + (1/n) Σ_i (x_i − v) · min(1, τ / ‖x_i − v‖)``, ``iterations`` times.

    Each row moves the centre ``v`` by at most ``τ / n``, so ``f`` rows move it by at most
    ``f · τ / n`` per iteration, whatever they hold. The paper starts from the previous round's
    aggregate (the caller keeps it) and pairs the rule with worker momentum.

    Parameters
    ----------
    x : torch.Tensor
        Client vectors, shape (n, d).
    center : torch.Tensor or None
        The starting centre ``v₀``, shape (d,); zero when None.
    tau : float
        Clipping radius, ``> 0``, in the units of the rows.
    iterations : int
        ``L >= 1``.

    Returns
    -------
    torch.Tensor
        The final centre, shape (d,), in ``x``'s dtype and device.

    Examples
    --------
    >>> x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [-1e30, 0.0]])
    >>> centered_clipping(x, None, tau=2.0)  # (1 + 1 + 1 - 2) / 4
    tensor([0.2500, 0.0000])
    >>> centered_clipping(x, torch.tensor([1.0, 0.0]), tau=2.0)  # 1 + (0 + 0 + 0 - 2) / 4
    tensor([0.5000, 0.0000])
    >>> centered_clipping(x, torch.tensor([1.0, 0.0]), tau=2.0, iterations=3)  # 0.5, 0.375, then
    tensor([0.3438, 0.0000])
    """
    check_matrix(x)
    check_positive(tau, "tau")
    check_int(iterations, "iterations", low=1)
    n, d = x.shape
    if center is None:
        v = torch.zeros(d, dtype=x.dtype, device=x.device)
    else:
        v = check_vector(center, "center", d).to(x.device, x.dtype).clone()
    limit = torch.full((n,), float(tau), dtype=torch.float64, device=x.device)
    for _ in range(iterations):
        diff = x - v
        if all_finite(diff):
            # (1/n) Σ min(1, τ/‖x_i − v‖)(x_i − v) as one combination: no clipped copy of the rows.
            norms = row_norms(diff)
            factor = torch.where(norms > limit, limit / torch.where(norms > limit, norms, 1.0), 1.0)
            step = combine(diff, factor / n)
        else:  # x_i − v beyond float32 (both near ±3.4e38)
            wide = x.to(torch.float64) - v.to(torch.float64)
            step = _clip_to(wide, row_norms(wide), limit).mean(dim=0).to(x.dtype)
        v = v + step
    return v
