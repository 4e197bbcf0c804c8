"""FED-CURE's client step: Hessian-vector products, the cubic sub-problem solver, the saddle toy.

FED-CURE is Ghosh, Maity and Mazumdar (2023), "FED-CURE: A Robust Federated Learning Algorithm with Cubic
Regularized Newton".
"""

import pytest
import torch

from fedrobust.optim import cubic_step, fedcure_step, hvp


def _quadratic(H, g):
    return lambda w: 0.5 * w @ (H @ w) + g @ w


def _cubic_model(g, H, gamma, M):
    return lambda s: float(g @ s + 0.5 * gamma * s @ (H @ s) + M / 6 * gamma**2 * torch.linalg.vector_norm(s) ** 3)


def test_hvp_matches_the_dense_hessian(device):
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(40, 6, generator=gen, dtype=torch.float64).to(device)
    y = torch.randn(40, generator=gen, dtype=torch.float64).to(device)
    loss = lambda w: torch.log1p((X @ w - y) ** 2 / 2).mean()  # FED-CURE's non-convex robust regression
    w = torch.randn(6, generator=gen, dtype=torch.float64).to(device)
    v = torch.randn(6, generator=gen, dtype=torch.float64).to(device)
    dense = torch.autograd.functional.hessian(loss, w)
    out = hvp(loss, w, v)
    assert out.device == w.device
    assert torch.allclose(out, dense @ v, atol=1e-10)


def test_hvp_of_a_linear_loss_is_zero():
    assert torch.equal(hvp(lambda w: w.sum(), torch.ones(3), torch.ones(3)), torch.zeros(3))


def test_cubic_step_solves_the_subproblem(device):
    """Against the exact minimiser, found by a 1-D search on ‖s‖ (s(r) = −(γH + (M/2)γ² r I)⁻¹ g)."""
    gen = torch.Generator().manual_seed(1)
    Q = torch.linalg.qr(torch.randn(8, 8, generator=gen, dtype=torch.float64)).Q
    H = Q @ torch.diag(torch.linspace(-1.0, 3.0, 8, dtype=torch.float64)) @ Q.T  # indefinite
    g = torch.randn(8, generator=gen, dtype=torch.float64)
    gamma, M = 0.7, 4.0
    rs = torch.linspace(1e-3, 10, 20001, dtype=torch.float64)
    lo, eye = torch.linalg.eigvalsh(gamma * H)[0], torch.eye(8, dtype=torch.float64)
    best = None
    for r in rs[(M / 2) * gamma**2 * rs + lo > 0]:  # the solution has γH + (M/2)γ²‖s‖I ⪰ 0
        s = -torch.linalg.solve(gamma * H + (M / 2) * gamma**2 * r * eye, g)
        if abs(float(torch.linalg.vector_norm(s)) - float(r)) < 1e-3:
            best = s
            break
    assert best is not None
    model = _cubic_model(g, H, gamma, M)
    f = _quadratic(H.to(device), g.to(device))
    s = cubic_step(f, torch.zeros(8, dtype=torch.float64, device=device), gamma, M, steps=2000).cpu()
    assert model(s) == pytest.approx(model(best), abs=1e-6)
    assert torch.allclose(s, best, atol=1e-3)
    # FED-CURE's ten steps already improve on the Cauchy point, and the model never goes up
    cauchy = cubic_step(f, torch.zeros(8, dtype=torch.float64, device=device), gamma, M, steps=0).cpu()
    ten = cubic_step(f, torch.zeros(8, dtype=torch.float64, device=device), gamma, M, steps=10).cpu()
    assert model(s) <= model(ten) < model(cauchy) < 0


def test_cauchy_point_is_the_best_step_along_minus_g():
    H, g = torch.diag(torch.tensor([2.0, -1.0], dtype=torch.float64)), torch.tensor([1.0, 0.5], dtype=torch.float64)
    model = _cubic_model(g, H, 1.0, 10.0)
    s = cubic_step(_quadratic(H, g), torch.zeros(2, dtype=torch.float64), 1.0, 10.0, steps=0)
    u = g / torch.linalg.vector_norm(g)
    assert torch.allclose(s / torch.linalg.vector_norm(s), -u)
    r = float(torch.linalg.vector_norm(s))
    assert model(s) <= min(model(-(r * t) * u) for t in (0.9, 0.99, 1.01, 1.1))


def test_bad_step_size_is_safeguarded():
    H, g = torch.diag(torch.tensor([5.0, 1.0], dtype=torch.float64)), torch.tensor([1.0, 1.0], dtype=torch.float64)
    model = _cubic_model(g, H, 1.0, 1.0)
    cauchy = cubic_step(_quadratic(H, g), torch.zeros(2, dtype=torch.float64), 1.0, 1.0, steps=0)
    s = cubic_step(_quadratic(H, g), torch.zeros(2, dtype=torch.float64), 1.0, 1.0, steps=30, step_size=100.0)
    assert model(s) <= model(cauchy)


def test_zero_gradient_gives_zero_step_unless_perturbed():
    f = lambda w: w[0] ** 2 - w[1] ** 2
    assert torch.equal(cubic_step(f, torch.zeros(2), 1.0, 10.0), torch.zeros(2))
    gen = torch.Generator().manual_seed(0)
    s = cubic_step(f, torch.zeros(2), 1.0, 10.0, steps=200, perturb=1e-3, generator=gen)
    assert abs(float(s[1])) > 0.3  # the perturbation finds the negative curvature (minimiser |s2| ≈ 0.4)


def _saddle_clients():
    return [lambda w: w[0] ** 2 - w[1] ** 2, lambda w: 2 * w[0] ** 2 - 2 * w[1] ** 2]


def _total(w):
    return sum(f(w) for f in _saddle_clients()).item()


def _fedcure(w, rounds, **kw):
    for _ in range(rounds):
        steps = torch.stack([cubic_step(f, w, 1.0, 10.0, 10, **kw) for f in _saddle_clients()])
        w, _ = fedcure_step(w, steps, beta=0.0, eta=1.0)
    return w


def _gd(w, rounds, lr=0.1):
    for _ in range(rounds):
        w = w.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(sum(f(w) for f in _saddle_clients()) / 2, w)
        w = (w - lr * g).detach()
    return w


def test_fedcure_escapes_the_saddle_of_the_toy_problem():
    """FED-CURE paper §4: f1 = w1² − w2², f2 = 2w1² − 2w2² on two clients, started near the saddle (0, 0)."""
    start = torch.tensor([1e-3, 1e-3], dtype=torch.float64)
    w = _fedcure(start, 5)
    assert abs(float(w[1])) > 0.5 and abs(float(w[0])) < 1e-3
    assert _total(w) < -0.5  # from f = 0 at the start
    # gradient descent (lr 0.1 on the mean loss) after as many rounds is still at the saddle
    w_gd = _gd(start, 5)
    assert abs(float(w_gd[1])) < 1e-2 and abs(_total(w_gd)) < 1e-3


def test_on_the_stable_manifold_only_the_perturbed_step_escapes():
    """From (1e-3, 0) the gradient is orthogonal to the negative curvature."""
    start = torch.tensor([1e-3, 0.0], dtype=torch.float64)
    w_gd = _gd(start, 200)
    assert float(w_gd[1]) == 0.0 and 0.0 <= _total(w_gd) < 1e-12  # GD converges to the saddle
    assert float(_fedcure(start, 20)[1]) == 0.0  # so does the unperturbed solver (the "hard case")
    w = _fedcure(start, 5, perturb=1e-3, generator=torch.Generator().manual_seed(0))
    assert abs(float(w[1])) > 0.5 and _total(w) < -0.5


def test_argument_checks():
    f = lambda w: (w**2).sum()
    w = torch.ones(3)
    with pytest.raises(ValueError, match="gamma"):
        cubic_step(f, w, 0.0, 1.0)
    with pytest.raises(ValueError, match="M must be"):
        cubic_step(f, w, 1.0, -1.0)
    with pytest.raises(ValueError, match="steps"):
        cubic_step(f, w, 1.0, 1.0, steps=-1)
    with pytest.raises(ValueError, match="step_size"):
        cubic_step(f, w, 1.0, 1.0, step_size=0.0)
    with pytest.raises(TypeError, match="loss_fn must be a callable"):
        cubic_step(None, w, 1.0, 1.0)
    with pytest.raises(ValueError, match="loss_fn must return a scalar"):
        cubic_step(lambda w: w * 2, w, 1.0, 1.0)
    with pytest.raises(ValueError, match="v must have length 3"):
        hvp(f, w, torch.ones(2))
