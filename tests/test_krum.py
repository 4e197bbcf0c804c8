import pytest
import torch

from fedrobust.aggregators import krum, krum_scores, krum_select


def test_krum_selects_an_inlier(device):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(20, 100, generator=gen)
    x[:6] = -100 * x[:6]  # 30% scaled bit-flip outliers
    x = x.to(device)
    chosen = krum_select(x, f=6, m=5)
    assert all(int(i) >= 6 for i in chosen)
    out = krum(x, f=6)
    assert any(torch.equal(out, x[i]) for i in range(6, 20))


def test_scores_by_hand():
    x = torch.tensor([[0.0], [1.0], [3.0], [10.0]])
    # f = 0: each row sums its n - 2 = 2 smallest squared distances
    assert krum_scores(x, 0).tolist() == [1.0 + 9.0, 1.0 + 4.0, 4.0 + 9.0, 49.0 + 81.0]


def test_multi_krum_averages():
    x = torch.tensor([[0.0], [1.0], [2.0], [100.0], [-100.0], [1.5]])
    assert krum(x, f=1, m=3).item() == pytest.approx((1.0 + 2.0 + 1.5) / 3)


def test_requires_enough_rows():
    with pytest.raises(ValueError, match="2\\*f \\+ 2 < n"):
        krum(torch.randn(4, 3), f=1)
    with pytest.raises(ValueError, match="m must lie"):
        krum(torch.randn(6, 3), f=1, m=6)
