import pytest
import torch

from fedrobust.aggregators import block_geometric_median, geometric_median


def test_one_step_by_hand():
    # three honest rows, one attacker; top-k picks the two largest-energy columns 0 and 2
    p = torch.tensor([[2.0, 0.1, 4.0], [2.0, -0.1, 4.0], [2.0, 0.3, 4.0], [-200.0, 0.0, -400.0]])
    step = block_geometric_median(p.clone(), k=2, selection="top-k", memory="mean")
    assert step.indices.tolist() == [0, 2]
    # the GM in R^2 of three copies of (2, 4) and one far point is (2, 4)
    assert torch.allclose(step.update, torch.tensor([2.0, 0.0, 4.0]), atol=1e-6)
    # the memory is the row mean of P - C_k(P): only column 1 survives
    assert torch.allclose(step.memory, torch.tensor([0.0, 0.3 / 4, 0.0]), atol=1e-7)
    scores = p.pow(2).sum(0)
    assert step.relative_residual == pytest.approx(float(scores[1] / scores.sum()))


def test_rows_memory_is_per_client_residual_and_in_place():
    p = torch.randn(5, 40, generator=torch.Generator().manual_seed(0))
    original = p.clone()
    step = block_geometric_median(p, k=10, generator=torch.Generator().manual_seed(1), memory="rows")
    expected = original.clone()
    expected[:, step.indices] = 0
    assert step.memory is p and torch.equal(step.memory, expected)
    assert torch.count_nonzero(step.update) <= 10
    assert torch.allclose(step.update[step.indices], geometric_median(original[:, step.indices]).median)


def test_full_block_is_gmd_and_memory_none():
    p = torch.randn(7, 12, generator=torch.Generator().manual_seed(2))
    step = block_geometric_median(p.clone(), k=12, memory="none")
    assert step.memory is None and step.relative_residual == 0.0
    assert torch.allclose(step.update, geometric_median(p).median)


def test_checks():
    with pytest.raises(ValueError, match="memory"):
        block_geometric_median(torch.randn(3, 4), 2, memory="all")
    with pytest.raises(ValueError, match="k must lie"):
        block_geometric_median(torch.randn(3, 4), 5)


def test_gm_weighted_memory_ignores_the_far_row():
    p = torch.tensor([[2.0, 0.1, 4.0], [2.0, -0.1, 4.0], [2.0, 0.3, 4.0], [-200.0, 9.0, -400.0]])
    uniform = block_geometric_median(p.clone(), k=2, selection="top-k", memory="mean")
    weighted = block_geometric_median(p.clone(), k=2, selection="top-k", memory="mean", memory_weights="gm")
    assert torch.allclose(uniform.memory, torch.tensor([0.0, 9.3 / 4, 0.0]), atol=1e-6)
    # the three rows at the median share the weight; the attacker's 9.0 counts about 1e-6 of it
    assert torch.allclose(weighted.memory, torch.tensor([0.0, 0.3 / 3, 0.0]), atol=1e-4)
    with pytest.raises(ValueError, match="memory_weights"):
        block_geometric_median(p.clone(), k=2, memory_weights="median")
