"""FED-CURE's client step: an approximate cubic-regularised Newton step from Hessian-vector products.

FED-CURE is Ghosh, Maity and Mazumdar (2023), "FED-CURE: A Robust Federated Learning Algorithm with Cubic
Regularized Newton".

Client i solves s = argmin_s m(s), m(s) = gᵀs + (γ/2)·sᵀHs + (M/6)·γ²·‖s‖³, with g, H its local
gradient and Hessian, by gradient descent on m (Carmon and Duchi (2016), "Gradient Descent Efficiently Finds
the Cubic-Regularized Non-Convex Newton Step"; it is the sub-problem solver of Tripuraneni, Stern, Jin, Regier
and Jordan (2018), "Stochastic Cubic Regularization for Fast Nonconvex Optimization", which the
FED-CURE paper runs for 10 steps):

    ∇m(s) = g + γ·Hs + (M/2)·γ²·‖s‖·s,

where every Hs is one double-backward Hessian-vector product (:func:`hvp`): no d×d Hessian is built.

Solver details (:func:`cubic_step`). Write A = γH and ρ = Mγ²/2, so m(s) = gᵀs + ½sᵀAs + (ρ/3)‖s‖³.

- Start at the Cauchy point s₀ = −R_c·g/‖g‖, the minimiser of m along −g:
  R_c = (−κ + sqrt(κ² + 4ρ‖g‖)) / (2ρ) with κ = gᵀAg/‖g‖². Where H has negative curvature
  along g this is already a long step, which is how the method leaves saddle points.
- Step size (when not given): η = 1 / (4(β + ρR)), Carmon & Duchi's safe choice, with β an
  estimate of ‖A‖ from ``power_iters`` power iterations (Hessian-vector products from a fixed
  pseudo-random start) and R = β/(2ρ) + sqrt(β²/(4ρ²) + ‖g‖/ρ) their bound on ‖s*‖.
- Safeguard: a step that would increase m is undone and η halved, so m never increases and the
  result is never worse than the Cauchy point (m is tracked exactly: sᵀAs reuses the step's product).
- Optional perturbation (Carmon & Duchi): g̃ = g + σ·u, u uniform on the unit sphere. Without it,
  a g orthogonal to every negative-curvature direction (e.g. on a saddle's stable manifold) keeps
  the iterates in that subspace; with it (``perturb=σ > 0``) the step escapes.

Cost per call: 1 gradient, 1 + ``steps`` (+ ``power_iters`` when ``step_size`` is None) Hessian-vector
products.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..core.checks import check_int
from ._checks import check_nonnegative, check_positive, check_vector

__all__ = ["cubic_step", "hvp"]

LossFn = Callable[[torch.Tensor], torch.Tensor]


def _gradient_graph(loss_fn: LossFn, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(w with grad, ∇loss(w) with its graph kept for Hessian-vector products)."""
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a callable taking the flat parameters, got {type(loss_fn).__name__}")
    w = check_vector(w, "w").detach().clone().requires_grad_(True)
    with torch.enable_grad():
        loss = loss_fn(w)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise ValueError("loss_fn must return a scalar tensor")
        (g,) = torch.autograd.grad(loss.reshape(()), w, create_graph=True, allow_unused=True)
    if g is None:
        g = torch.zeros_like(w)
    return w, g


def _hvp_from_graph(w: torch.Tensor, g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """H v = d(gᵀv)/dw through the kept graph of g (zero where g does not depend on w)."""
    if not g.requires_grad:
        return torch.zeros_like(v)
    with torch.enable_grad():
        (hv,) = torch.autograd.grad(g, w, grad_outputs=v.to(g), retain_graph=True, allow_unused=True)
    return torch.zeros_like(v) if hv is None else hv.detach()


def hvp(loss_fn: LossFn, w: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Hessian-vector product ∇²loss(w)·v by double backward (no dense Hessian).

    Parameters
    ----------
    loss_fn : callable
        Maps a flat parameter tensor of shape (d,) to a scalar loss (built from torch operations).
    w : torch.Tensor
        The point, shape (d,) (it is copied; its own ``requires_grad`` does not matter).
    v : torch.Tensor
        The direction, shape (d,).

    Returns
    -------
    torch.Tensor
        H(w)·v, shape (d,), on ``w``'s device.

    Examples
    --------
    >>> f = lambda w: w[0] ** 2 - 2 * w[1] ** 2 + w[0] * w[1]   # H = [[2, 1], [1, -4]]
    >>> hvp(f, torch.tensor([0.3, -1.0]), torch.tensor([1.0, 1.0]))
    tensor([ 3., -3.])
    """
    w, g = _gradient_graph(loss_fn, w)
    v = check_vector(v, "v", d=w.numel())
    return _hvp_from_graph(w, g, v)


def cubic_step(
    loss_fn: LossFn,
    w: torch.Tensor,
    gamma: float,
    M: float,
    steps: int = 10,
    step_size: float | None = None,
    *,
    perturb: float = 0.0,
    generator: torch.Generator | None = None,
    power_iters: int = 10,
) -> torch.Tensor:
    """Approximate s = argmin_s gᵀs + (γ/2)·sᵀHs + (M/6)·γ²·‖s‖³ at ``w`` (see the module docstring).

    The result is a descent step: the FED-CURE server *adds* (a robust mean of) the clients' s.

    Parameters
    ----------
    loss_fn : callable
        The client's local loss: flat parameters (d,) -> scalar tensor (twice differentiable).
    w : torch.Tensor
        The current global model, shape (d,).
    gamma : float
        γ > 0, scales the Hessian term (and the cubic term by γ²); the FED-CURE paper uses 1.
    M : float
        Cubic regularisation M > 0 (the FED-CURE paper: 10).
    steps : int
        Gradient-descent steps after the Cauchy point (the FED-CURE paper: 10); 0 returns the Cauchy point.
    step_size : float, optional
        The solver's step size η > 0; default: Carmon & Duchi's 1 / (4(β + ρR)) with β estimated
        by power iteration.
    perturb : float
        σ >= 0: solve with g + σ·u, u uniform on the unit sphere (default 0: no perturbation).
    generator : torch.Generator, optional
        Source of u when ``perturb > 0`` (CPU generator; default: torch's global one).
    power_iters : int
        Power iterations (>= 1) for β when ``step_size`` is None.

    Returns
    -------
    torch.Tensor
        The step s, shape (d,), detached, in ``w``'s dtype and device. Zero when g̃ = 0 (s = 0
        is then stationary for m).

    Examples
    --------
    Near the saddle of f(w) = w₁² − w₂² the step follows the negative curvature (the exact
    minimiser is about (−0.0005, 0.401)):

    >>> f = lambda w: w[0] ** 2 - w[1] ** 2
    >>> s = cubic_step(f, torch.tensor([1e-3, 1e-3]), gamma=1.0, M=10.0, steps=50)
    >>> [round(v, 2) for v in s.tolist()]
    [-0.0, 0.39]

    On a convex quadratic with small M it is close to the Newton step −H⁻¹g = (−1, −1):

    >>> q = lambda w: 0.5 * (w[0] ** 2 + 4 * w[1] ** 2)
    >>> [round(v, 2) for v in cubic_step(q, torch.tensor([1.0, 1.0]), gamma=1.0, M=1e-3, steps=200).tolist()]
    [-1.0, -1.0]
    """
    gamma = check_positive(gamma, "gamma")
    M = check_positive(M, "M")
    steps = check_int(steps, "steps", low=0)
    perturb = check_nonnegative(perturb, "perturb")
    power_iters = check_int(power_iters, "power_iters", low=1)
    if step_size is not None:
        step_size = check_positive(step_size, "step_size")
    w, g = _gradient_graph(loss_fn, w)

    def matvec(v: torch.Tensor) -> torch.Tensor:  # A v = γ H v
        return gamma * _hvp_from_graph(w, g, v)

    b = g.detach().clone()
    if perturb > 0:
        u = torch.randn(b.numel(), generator=generator, dtype=b.dtype, device=generator.device if generator else "cpu")
        b = b + (perturb / torch.linalg.vector_norm(u)) * u.to(b.device)
    rho = M * gamma**2 / 2
    b_norm = float(torch.linalg.vector_norm(b))
    if b_norm == 0.0:
        return torch.zeros_like(b)

    # Cauchy point: the minimiser of m along -b.
    u = b / b_norm
    Au = matvec(u)
    kappa = float(u @ Au)
    r_c = (-kappa + math.sqrt(kappa**2 + 4 * rho * b_norm)) / (2 * rho)
    s, As = -r_c * u, -r_c * Au
    if steps == 0:
        return s.detach()

    if step_size is None:
        start = torch.randn(b.numel(), generator=torch.Generator().manual_seed(0), dtype=b.dtype).to(b.device)
        v, beta = start / torch.linalg.vector_norm(start), abs(kappa)
        for _ in range(power_iters):
            Av = matvec(v)
            norm = float(torch.linalg.vector_norm(Av))
            beta = max(beta, norm)
            if norm == 0.0:
                break
            v = Av / norm
        radius = beta / (2 * rho) + math.sqrt(beta**2 / (4 * rho**2) + b_norm / rho)
        step_size = 1.0 / (4 * (beta + rho * radius))  # radius > 0 since ‖b‖ > 0

    def model(s: torch.Tensor, As: torch.Tensor) -> float:
        return float(b @ s + 0.5 * (s @ As) + (rho / 3) * torch.linalg.vector_norm(s) ** 3)

    value = model(s, As)
    eta = step_size
    for _ in range(steps):
        grad_m = b + As + rho * torch.linalg.vector_norm(s) * s
        s_new = s - eta * grad_m
        As_new = matvec(s_new)
        value_new = model(s_new, As_new)
        if value_new <= value:
            s, As, value = s_new, As_new, value_new
        else:  # undo and shrink: m never increases
            eta /= 2
    return s.detach()
