"""C-RSA / RSA: coordinates, ternary messages and their wire form, the αλ bound, convergence.

From He, Zhu and Ling (2023), "C-RSA: Byzantine-robust and communication-efficient distributed learning in the
non-convex and non-IID regime".
"""

import math

import numpy as np
import pytest
import torch

from fedrobust.compression import PayloadError, RandK, get_compressor, payload_nbytes
from fedrobust.optim import draw_coordinates, master_update, pack_signs, unpack_signs, worker_message, worker_update


def test_rand_coordinates_are_reproducible_from_the_seed():
    a = draw_coordinates(1000, 100, seed=42)
    assert torch.equal(a, draw_coordinates(1000, 100, seed=42))
    assert not torch.equal(a, draw_coordinates(1000, 100, seed=43))
    assert a.dtype == torch.int64 and a.numel() == 100
    assert bool((a[1:] > a[:-1]).all()) and 0 <= int(a[0]) and int(a[-1]) < 1000
    # the same set a rand-k payload carries: the master's downlink is get_compressor("rand-k").encode
    assert torch.equal(a, RandK(k=100).indices(1000, 42))
    x0 = torch.randn(1000)
    down = get_compressor("rand-k", k=100).encode(x0, seed=42)
    assert torch.equal(torch.from_numpy(down["values"]), x0[a])


def test_top_coordinates_pick_the_largest_magnitudes(device):
    x0 = torch.randn(500, generator=torch.Generator().manual_seed(0)).to(device)
    omega = draw_coordinates(500, 50, method="top", x0=x0)
    assert omega.device == x0.device
    assert set(omega.tolist()) == set(torch.argsort(x0.abs(), descending=True)[:50].tolist())
    assert bool((omega[1:] > omega[:-1]).all())
    assert float(x0.abs()[omega].min()) == float(x0.abs().sort().values[-50])


def test_draw_coordinates_checks():
    with pytest.raises(ValueError, match="seed is required"):
        draw_coordinates(10, 3)
    with pytest.raises(ValueError, match="x0 is required"):
        draw_coordinates(10, 3, method="top")
    with pytest.raises(ValueError, match="method must be one of rand, top"):
        draw_coordinates(10, 3, seed=0, method="bottom")
    with pytest.raises(ValueError, match=r"l must lie in \[1, 10\]"):
        draw_coordinates(10, 11, seed=0)


def test_worker_message_is_ternary_int8():
    x0 = torch.tensor([1.0, 2.0, 3.0, 4.0])
    msg = worker_message(x0, torch.tensor([0.0, 2.0, 9.0, -1e30]))
    assert msg.dtype == torch.int8 and msg.tolist() == [1, 0, -1, 1]


@pytest.mark.parametrize("l", [1, 7, 8, 9, 1000])
def test_ternary_messages_round_trip_through_the_packed_payload(l):
    gen = torch.Generator().manual_seed(l)
    signs = torch.randint(-1, 2, (l,), generator=gen, dtype=torch.int8)
    payload = pack_signs(signs)
    assert torch.equal(unpack_signs(payload, l), signs)
    has_zero = bool((signs == 0).any())
    assert payload_nbytes(payload) == math.ceil(l / 8) * (2 if has_zero else 1)
    nonzero = torch.where(signs == 0, torch.ones_like(signs), signs)
    assert payload_nbytes(pack_signs(nonzero)) == math.ceil(l / 8)
    assert torch.equal(unpack_signs(pack_signs(nonzero), l), nonzero)


def test_unpack_rejects_malformed_payloads():
    payload = pack_signs(torch.tensor([1, -1, 0], dtype=torch.int8))
    with pytest.raises(PayloadError):
        unpack_signs({"negative": payload["negative"]}, 3)
    with pytest.raises(PayloadError):
        unpack_signs({**payload, "zero": np.zeros(5, np.uint8)}, 3)
    with pytest.raises(ValueError, match="only -1, 0 or 1"):
        pack_signs(torch.tensor([2, 0], dtype=torch.int8))


def test_worker_update_formula(device):
    gen = torch.Generator().manual_seed(0)
    xk, grad, x0 = (torch.randn(40, generator=gen).to(device) for _ in range(3))
    omega = draw_coordinates(40, 10, seed=1).to(device)
    new = worker_update(xk, grad, x0[omega], omega, alpha=0.1, lam=0.5)
    expected = xk - 0.1 * grad
    expected[omega] -= 0.1 * 0.5 * torch.sign(xk[omega] - x0[omega])
    assert torch.allclose(new, expected)
    # RSA: omega = None means every coordinate
    full = worker_update(xk, grad, x0, None, alpha=0.1, lam=0.5)
    assert torch.allclose(full, xk - 0.1 * (grad + 0.5 * torch.sign(xk - x0)))


def test_each_worker_moves_each_coordinate_by_at_most_alpha_lambda(device):
    """Whatever a (Byzantine) worker sends, its effect on any coordinate of x0 is at most αλ."""
    gen = torch.Generator().manual_seed(0)
    d, l, n, alpha, lam = 200, 80, 10, 0.05, 0.3
    x0 = torch.randn(d, generator=gen).to(device)
    omega = draw_coordinates(d, l, seed=7)
    honest = [worker_message(x0[omega], torch.randn(l, generator=gen).to(device)) for _ in range(n - 3)]
    zs = [torch.full((l,), 1e30), torch.full((l,), -1e30), 1e6 * torch.randn(l, generator=gen)]
    byzantine = [worker_message(x0[omega], z.to(device)) for z in zs]  # arbitrary z, still ternary
    signs = torch.stack(honest + byzantine)
    grad0 = 0.01 * x0
    base = master_update(x0, grad0, signs, omega, alpha, lam)
    for k in range(n):
        without = signs.clone()
        without[k] = 0
        effect = base - master_update(x0, grad0, without, omega, alpha, lam)
        assert float(effect.abs().max()) <= alpha * lam * (1 + 1e-5)
        outside = torch.ones(d, dtype=torch.bool, device=device)
        outside[omega.to(device)] = False
        assert float(effect[outside].abs().max()) == 0.0
    # the whole round moves x0 by at most alpha * (|grad0| + n * lam) per coordinate
    assert bool(((base - x0).abs() <= alpha * (grad0.abs() + n * lam) + 1e-6).all())


def test_master_update_formula_and_checks():
    x0 = torch.tensor([1.0, 2.0, 3.0])
    signs = torch.tensor([[1, -1, 1], [1, 1, 1]], dtype=torch.int8)
    out = master_update(x0, 0.1 * x0, signs, None, alpha=0.5, lam=2.0)
    assert torch.allclose(out, x0 - 0.5 * (0.1 * x0 + 2.0 * torch.tensor([2.0, 0.0, 2.0])))
    with pytest.raises(ValueError, match="only -1, 0 or 1"):
        master_update(x0, None, torch.tensor([[1.0, 1e4, 0.0]]), None, 0.5, 2.0)
    with pytest.raises(ValueError, match="omega=None means all 3 coordinates"):
        master_update(x0, None, torch.ones(1, 2), None, 0.5, 2.0)
    with pytest.raises(ValueError, match="strictly increasing"):
        master_update(x0, None, torch.ones(1, 2), torch.tensor([2, 1]), 0.5, 2.0)
    with pytest.raises(ValueError, match="strictly increasing"):
        master_update(x0, None, torch.ones(1, 2), torch.tensor([1, 1]), 0.5, 2.0)
    with pytest.raises(TypeError, match="int64"):
        master_update(x0, None, torch.ones(1, 2), torch.tensor([0.0, 1.0]), 0.5, 2.0)
    with pytest.raises(ValueError, match="alpha"):
        master_update(x0, None, torch.ones(1, 3), None, 0.0, 2.0)
    with pytest.raises(ValueError, match="lam"):
        worker_update(x0, x0, x0, None, 0.1, -1.0)


def _least_squares(K=10, d=20, rows=30, seed=0):
    gen = torch.Generator().manual_seed(seed)
    A = torch.randn(K, rows, d, generator=gen, dtype=torch.float64)
    x_true = torch.randn(d, generator=gen, dtype=torch.float64)
    b = torch.einsum("knd,d->kn", A, x_true) + 0.1 * torch.randn(K, rows, generator=gen, dtype=torch.float64)
    return A, b


def _grad(A, b, k, x):
    return A[k].T @ (A[k] @ x - b[k]) / A.shape[1]


def test_crsa_and_rsa_converge_near_the_optimum_while_the_mean_does_not():
    """10 workers, 2 Byzantine (always pushing x0 up: z = +1e4, the large-number attack), μ = 0.01."""
    A, b = _least_squares()
    K, d, B, mu, alpha, lam, rounds = 10, 20, 2, 0.01, 0.02, 0.1, 1500
    regular = range(B, K)
    H = sum(A[k].T @ A[k] for k in regular) / A.shape[1] + mu * torch.eye(d, dtype=torch.float64)
    x_star = torch.linalg.solve(H, sum(A[k].T @ b[k] for k in regular) / A.shape[1])

    def crsa(ratio):
        x0, xk = torch.zeros(d, dtype=torch.float64), torch.zeros(K, d, dtype=torch.float64)
        for t in range(rounds):
            omega = draw_coordinates(d, int(ratio * d), seed=t) if ratio < 1 else None
            x0_on = x0 if omega is None else x0[omega]
            on = (lambda v: v) if omega is None else (lambda v: v[omega])
            msgs = [worker_message(x0_on, on(torch.full((d,), 1e4, dtype=torch.float64))) for _ in range(B)]
            for k in regular:
                msgs.append(worker_message(x0_on, on(xk[k])))
                xk[k] = worker_update(xk[k], _grad(A, b, k, xk[k]), x0_on, omega, alpha, lam)
            signs = unpack_signs(pack_signs(torch.stack(msgs).reshape(-1)), len(msgs) * x0_on.numel())
            x0 = master_update(x0, mu * x0, signs.reshape(len(msgs), -1), omega, alpha, lam)
        return float(torch.linalg.vector_norm(x0 - x_star) / torch.linalg.vector_norm(x_star))

    def mean_sgd():
        x = torch.zeros(d, dtype=torch.float64)
        for _ in range(rounds // 3):
            grads = torch.stack([_grad(A, b, k, x) for k in range(K)])
            grads[:B] = 1e4
            x = x - alpha * (grads.mean(0) + mu * x)
        return float(torch.linalg.vector_norm(x - x_star) / torch.linalg.vector_norm(x_star))

    # measured: C-RSA 0.024, RSA 0.035, mean ~3e3 (relative errors)
    assert crsa(0.5) < 0.05
    assert crsa(1.0) < 0.05  # RSA
    assert mean_sgd() > 10.0
