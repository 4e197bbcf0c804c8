import numpy as np
import pytest
import torch
from scipy import stats

from fedrobust.aggregators import _sortnet, coordinate_median, trimmed_mean


@pytest.fixture(params=["network", "torch"])
def path(request, monkeypatch):
    if request.param == "network":
        if not _sortnet.HAVE_NUMBA:
            pytest.skip("numba not installed")
    else:
        monkeypatch.setattr(_sortnet, "can_use", lambda x: False)
    return request.param


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 10, 31, 32, 33, 64, 65])
def test_median_matches_numpy(n, path):
    x = torch.randn(n, 777, generator=torch.Generator().manual_seed(n))
    assert np.allclose(coordinate_median(x).numpy(), np.median(x.numpy(), axis=0), atol=1e-6)


@pytest.mark.parametrize("n, beta", [(3, 0.2), (5, 0.2), (10, 0.1), (10, 0.25), (32, 0.2), (40, 0.45), (64, 0.3), (100, 0.3), (101, 0.1)])
def test_trimmed_mean_matches_scipy(n, beta, path):
    x = torch.randn(n, 513, generator=torch.Generator().manual_seed(n), dtype=torch.float64)
    assert np.allclose(trimmed_mean(x, beta).numpy(), stats.trim_mean(x.numpy(), beta, axis=0), atol=1e-12)


def test_network_sorts_every_input_of_small_n():
    # 0-1 principle: a comparator network sorts all inputs iff it sorts all 0/1 inputs.
    for n in range(1, 11):
        first, second = _sortnet.network(n, 0, n)
        for mask in range(2**n):
            v = [(mask >> i) & 1 for i in range(n)]
            for a, b in zip(first, second):
                if v[a] > v[b]:
                    v[a], v[b] = v[b], v[a]
            assert v == sorted(v), (n, mask)


def test_robust_to_outliers(device):
    x = torch.randn(10, 100, device=device)
    x[:4] = 1e9
    assert coordinate_median(x).abs().max() < 10
    assert trimmed_mean(x, 0.4).abs().max() < 10


def test_argument_checks():
    with pytest.raises(ValueError, match="beta"):
        trimmed_mean(torch.randn(4, 2), 0.5)
    with pytest.raises(TypeError, match="beta"):
        trimmed_mean(torch.randn(4, 2), "a")
