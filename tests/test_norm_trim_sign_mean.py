import pytest
import torch

from fedrobust.aggregators import mean, norm_trim, sign_majority


def test_norm_trim_keeps_smallest_norms(device):
    x = torch.randn(10, 50, device=device)
    x[[2, 7]] *= 1000
    kept = norm_trim(x, 0.2)
    assert sorted(kept.tolist()) == [i for i in range(10) if i not in (2, 7)]


def test_norm_trim_fraction_and_checks():
    x = torch.randn(10, 3)
    assert norm_trim(x, 0.0).numel() == 10
    assert norm_trim(x, 0.35).numel() == 7
    with pytest.raises(ValueError, match="beta"):
        norm_trim(x, 1.0)
    with pytest.raises(ValueError, match="finite"):
        norm_trim(x, 0.1, norms=torch.full((10,), float("nan")))


def test_sign_majority(device):
    x = torch.tensor([[1.0, -1.0, 2.0, 0.0], [1.0, 1.0, -3.0, 0.0], [-1.0, -1.0, 0.0, 0.0]], device=device)
    assert sign_majority(x).tolist() == [1.0, -1.0, 0.0, 0.0]


def test_mean_is_not_robust():
    x = torch.ones(5, 2)
    x[0] = 1e6
    assert mean(x)[0] > 1e5
