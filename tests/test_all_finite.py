"""``fedrobust.core.checks.all_finite``: the one-reduction finiteness check used on every message."""

import pytest
import torch

from fedrobust.core.checks import all_finite


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_any_non_finite_entry_is_found(bad, dtype):
    x = torch.randn(100_003, dtype=torch.float32).to(dtype)
    for position in (0, 50_000, 100_002):
        y = x.clone()
        y[position] = bad
        assert not all_finite(y)


def test_inf_and_minus_inf_together_are_found():
    x = torch.zeros(10)
    x[2], x[7] = float("inf"), float("-inf")
    assert not all_finite(x)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_finite_entries_whose_sum_overflows_are_finite(dtype):
    big = torch.finfo(dtype).max
    x = torch.full((1000,), big, dtype=dtype)
    assert not bool(torch.isfinite(x.sum()))  # the fast path cannot decide this one
    assert all_finite(x)


def test_finite_and_trivial_inputs():
    assert all_finite(torch.randn(10_000))
    assert all_finite(torch.zeros(0))
    assert all_finite(torch.tensor([1, 2], dtype=torch.int64))
