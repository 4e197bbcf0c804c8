"""FED-CURE on ℓ2-regularised logistic regression, breast-cancer, against scikit-learn's optimum.

FED-CURE is Ghosh, Maity and Mazumdar (2023), "FED-CURE: A Robust Federated Learning Algorithm with Cubic
Regularized Newton". Objective (its App. D, λ = 1): F(w, b) = mean_i log(1 + exp(−y_i(xᵢᵀw + b))) + (λ/2n)‖w‖²
on the first 440 training samples (20 clients × 22, in the loader's shuffled order), the intercept b not
penalised: scikit-learn's LogisticRegression with C = 1/λ and fit_intercept=True minimises the same
function (times n/λ). Each client's loss is its own mean plus the same penalty, so the clients'
average is F. FED-CURE: γ = 1, M = 10, 10 solver steps, η = 1, β = ψ + 2/m under attack.

Measured with this setup: one client holding all the data reaches
F − F* < 1e-3; with 20 clients the iterates settle near a point with F − F* ≈ 7.5e-3 – 9e-3 (the
clients' cubic steps are non-linear in their heterogeneous 22-sample gradients, so their mean does
not vanish at the optimum); with η = 2 and 3 solver steps 6.1e-4 after 200 rounds; 20% ``gaussian``
attackers: ≈ 9e-3; 20% ``negative-update``: ≈ 2.3e-2.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression

from fedrobust.attacks import get_attack
from fedrobust.data import load_dataset
from fedrobust.models import get_model, set_flat_params
from fedrobust.optim import cubic_step, fedcure_step

CLIENTS, LAM = 20, 1.0


@pytest.fixture(scope="module")
def setup():
    ds = load_dataset("breast-cancer")
    n = (len(ds.y_train) // CLIENTS) * CLIENTS
    X = torch.tensor(ds.x_train[:n], dtype=torch.float64)
    y = torch.tensor(ds.y_train[:n], dtype=torch.float64)

    def objective(Xs, ys):
        def loss(w):
            z = Xs @ w[:-1] + w[-1]
            return F.softplus(-(2 * ys - 1) * z).mean() + LAM / (2 * n) * (w[:-1] ** 2).sum()
        return loss

    full = objective(X, y)
    clf = LogisticRegression(C=1.0 / LAM, fit_intercept=True, tol=1e-12, max_iter=10_000).fit(X.numpy(), y.numpy())
    w_opt = torch.tensor(np.r_[clf.coef_.ravel(), clf.intercept_])
    clients = [objective(Xc, yc) for Xc, yc in zip(X.reshape(CLIENTS, -1, X.shape[1]), y.reshape(CLIENTS, -1))]
    return {"X": X, "y": y, "full": full, "f_opt": float(full(w_opt)), "w_opt": w_opt, "clients": clients}


def _fedcure(losses, rounds, psi=0.0, attack=None, beta=None, seed=0, eta=1.0, solver_steps=10):
    m = len(losses)
    bad = int(psi * m)
    beta = (psi + 2 / m if attack else 0.0) if beta is None else beta
    gen = torch.Generator().manual_seed(seed)
    w = torch.zeros(31, dtype=torch.float64)
    for _ in range(rounds):
        steps = torch.stack([cubic_step(f, w, gamma=1.0, M=10.0, steps=solver_steps) for f in losses])
        if bad:
            steps[:bad] = get_attack(attack).corrupt(steps[:bad], gen)
        w, _ = fedcure_step(w, steps, beta=beta, eta=eta)
    return w


def test_objective_matches_sklearn_and_the_logistic_model(setup):
    w = setup["w_opt"].clone().requires_grad_(True)
    (g,) = torch.autograd.grad(setup["full"](w), w)
    assert float(g.norm()) < 1e-6  # scikit-learn's solution is the optimum of our objective
    model = get_model("logistic", input_shape=(30,), num_classes=2).double()
    set_flat_params(model, setup["w_opt"])
    with torch.no_grad():
        data_loss = model.loss(model(setup["X"]), setup["y"])
    penalty = LAM / (2 * len(setup["y"])) * float((setup["w_opt"][:-1] ** 2).sum())
    assert float(data_loss) + penalty == pytest.approx(setup["f_opt"], abs=1e-12)


def test_centralised_fedcure_reaches_the_optimum(setup):
    w = _fedcure([setup["full"]], rounds=60)
    assert float(setup["full"](w)) - setup["f_opt"] < 1e-3


def test_twenty_clients_without_attack(setup):
    w = _fedcure(setup["clients"], rounds=60)
    gap = float(setup["full"](w)) - setup["f_opt"]
    assert 0 <= gap < 1e-2  # not 1e-3: see the module docstring


@pytest.mark.slow
def test_twenty_clients_reach_one_in_a_thousand_with_eta_two_and_three_solver_steps(setup):
    # The fixed point of the clients' mean step is biased (module docstring); fewer solver steps
    # keep the steps closer to linear in the gradients, and eta = 2 gets there sooner (measured:
    # 8.5e-4 after 120 rounds, 7.1e-4 after 150, 6.1e-4 after 200; with 10 solver steps 7.7e-4
    # after 200; with eta = 1 and 10 steps 7.5e-3 after 60).
    w = _fedcure(setup["clients"], rounds=150, eta=2.0, solver_steps=3)
    gap = float(setup["full"](w)) - setup["f_opt"]
    assert 0 <= gap < 1e-3


def test_plain_mean_fails_under_gaussian_attack(setup):
    w = _fedcure(setup["clients"], rounds=15, psi=0.2, attack="gaussian", beta=0.0)
    assert float(setup["full"](w)) - setup["f_opt"] > 0.1


@pytest.mark.slow
@pytest.mark.parametrize("attack, limit", [("gaussian", 1e-2), ("negative-update", 3e-2)])
def test_twenty_clients_with_twenty_percent_attackers(setup, attack, limit):
    w = _fedcure(setup["clients"], rounds=60, psi=0.2, attack=attack)
    assert float(setup["full"](w)) - setup["f_opt"] < limit
