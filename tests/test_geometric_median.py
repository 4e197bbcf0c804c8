import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from fedrobust.aggregators import geometric_median


def _objective(y, x):
    return np.linalg.norm(x - y, axis=1).sum()


@pytest.mark.parametrize("method", ["gram", "direct"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_scipy_minimiser(method, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(9, 4)) * rng.uniform(0.1, 10, size=4)
    ref = minimize(_objective, x.mean(0), args=(x,), method="Nelder-Mead",
                   options={"xatol": 1e-12, "fatol": 1e-14, "maxiter": 50000, "maxfev": 50000}).x
    gm = geometric_median(torch.tensor(x), method=method)
    assert np.allclose(gm.median.numpy(), ref, atol=1e-6 * np.abs(x).max())
    assert gm.objective == pytest.approx(_objective(ref, x) / len(x), rel=1e-9)
    assert 1 <= gm.iterations < 1000


def test_one_dimensional_is_the_median():
    x = torch.tensor([[3.0], [-1.0], [10.0], [2.0], [7.0]], dtype=torch.float64)
    assert geometric_median(x).median.item() == pytest.approx(3.0, abs=1e-9)


@pytest.mark.parametrize("method", ["gram", "direct"])
def test_breakdown_45_percent_outliers(method, device):
    gen = torch.Generator().manual_seed(0)
    n, d = 40, 2000
    x = torch.randn(n, d, generator=gen)
    x[:18] = 1e6  # 45% of the rows far away
    x = x.to(device)
    gm = geometric_median(x, method=method)
    assert torch.isfinite(gm.median).all()
    assert gm.median.norm() < 5 * d**0.5 / 3  # near the inliers (which have norm about sqrt(d))
    assert x.mean(0).norm() > 1e5 * d**0.5  # while the mean explodes


def test_weights_shift_the_median():
    x = torch.tensor([[0.0], [1.0], [2.0]], dtype=torch.float64)
    assert geometric_median(x, weights=torch.tensor([1.0, 1.0, 5.0])).median.item() == pytest.approx(2.0, abs=1e-8)


def test_rows_coinciding_with_iterate():
    x = torch.randn(12, 50, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x[:7] = x[0]  # a majority of identical rows: the median is that row
    gm = geometric_median(x)
    assert torch.allclose(gm.median, x[0])
    # a pair of identical rows that is *not* the median must not trap the iteration
    y = torch.tensor([[0.0, 0.0], [0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0], [5.0, 5.0]], dtype=torch.float64)
    ref = minimize(_objective, np.array([1.0, 1.0]), args=(y.numpy(),), method="Nelder-Mead",
                   options={"xatol": 1e-12, "fatol": 1e-14, "maxiter": 20000}).x
    assert np.allclose(geometric_median(y).median.numpy(), ref, atol=1e-6)


def test_scale_free_stopping_rule():
    x = torch.randn(20, 300, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    a = geometric_median(x)
    b = geometric_median(x * 1e6)
    c = geometric_median(x * 1e-6)
    assert a.iterations == b.iterations == c.iterations
    assert torch.allclose(b.median / 1e6, a.median, rtol=1e-9, atol=1e-12)
    assert torch.allclose(c.median * 1e6, a.median, rtol=1e-9, atol=1e-12)


def test_tight_cluster_far_from_origin_keeps_precision():
    gen = torch.Generator().manual_seed(2)
    x = 1e4 + 1e-3 * torch.randn(20, 1000, generator=gen, dtype=torch.float64)
    x[:8] += 1e6
    ref = geometric_median(x, method="direct", tol=1e-14, max_iter=10000).median
    gm = geometric_median(x)
    spread = (x[8:] - ref).norm(dim=1).mean()
    assert (gm.median - ref).norm() / spread < 1e-6


def test_all_rows_equal_and_single_row():
    x = torch.ones(5, 3)
    assert torch.equal(geometric_median(x).median, torch.ones(3))
    assert torch.equal(geometric_median(x[:1]).median, torch.ones(3))


def test_float32_relative_error_against_float64():
    gen = torch.Generator().manual_seed(4)
    g = torch.randn(20000, generator=gen, dtype=torch.float64)
    x = g + 0.5 * torch.randn(32, 20000, generator=gen, dtype=torch.float64)
    x[:6] *= -100
    ref = geometric_median(x, tol=1e-13).median
    got = geometric_median(x.float()).median.double()
    assert (got - ref).norm() / ref.norm() < 1e-6


@pytest.mark.parametrize(
    "kwargs, message",
    [({"tol": 0}, "tol"), ({"max_iter": 0}, "max_iter"), ({"method": "newton"}, "method"),
     ({"weights": torch.tensor([1.0, -1.0])}, "weights")],
)
def test_argument_checks(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        geometric_median(torch.randn(2, 3), **kwargs)


def test_rejects_non_matrix():
    with pytest.raises(ValueError, match=r"shape \(n, d\)"):
        geometric_median(torch.randn(3))
    with pytest.raises(TypeError, match="floating"):
        geometric_median(torch.ones(3, 3, dtype=torch.int64))
