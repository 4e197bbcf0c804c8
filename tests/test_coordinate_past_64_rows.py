"""The compiled selection kernel for more than ``_sortnet.MAX_ROWS`` rows, and the sort route (median
and trimmed mean).

Each result is compared with the mean of ``torch.sort``'s values at the kept ranks, computed in
float64: equal up to a few ulps of the result plus the float64 rounding of summing the kept values in
another order. Columns an attacker could send (all equal, sorted either way, few distinct values,
values of +-3e38 mixed with small ones) are in every input.
"""

import time

import numpy as np
import pytest
import torch

from fedrobust.aggregators import _sortnet, coordinate_median, trimmed_mean

pytestmark = pytest.mark.skipif(not _sortnet.HAVE_NUMBA, reason="numba not installed (the 'fast' extra)")

ROWS = [65, 99, 100, 257, 1000]


@pytest.fixture(params=["selection", "sort route"])
def path(request, monkeypatch):
    """Each test on the selection kernel and on the sort route (forced at every n and size, on any CPU)."""
    forced = request.param == "sort route"
    monkeypatch.setattr(_sortnet, "sort_route_applies", lambda n, dtype, size: forced and n > _sortnet.REGISTER_MAX_ROWS)
    return request.param


def adversarial_block(n: int, d: int, dtype: torch.dtype, seed: int) -> torch.Tensor:
    """Random normal columns, the first ones replaced by columns built to break a selection."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    ramp = torch.arange(n, dtype=torch.float64)
    few = torch.randint(0, 3, (n,), generator=gen).double()
    huge = torch.tensor([-3e38, 3e38, 0.0, 1.0, -1.5], dtype=torch.float64)[torch.randint(0, 5, (n,), generator=gen)]
    columns = [
        torch.full((n,), 1.5, dtype=torch.float64),  # all equal
        ramp,  # sorted ascending
        -ramp,  # sorted descending
        few,  # three distinct values
        torch.sort(few).values,  # the same, sorted
        huge,  # +-3e38 mixed with small values
        torch.sort(huge).values,
        torch.where(ramp < n // 2, ramp, n - ramp),  # organ pipe
        torch.where(ramp == n // 2, 7.0, 0.0),  # one distinct value in the middle
        (ramp * 7919) % n,  # a permutation
    ]
    for j, column in enumerate(columns):
        x[:, j] = column
    x[:, len(columns)] = x[:, len(columns)].round()  # ties among random values
    return x.to(dtype)


def reference(x: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    return torch.sort(x.double(), dim=0).values[lo:hi].mean(dim=0)


def assert_close(result: torch.Tensor, x: torch.Tensor, lo: int, hi: int) -> None:
    ref = reference(x, lo, hi)
    assert result.dtype == x.dtype and result.shape == ref.shape
    # A few ulps of the result (in its dtype), plus summing hi - lo values of x in float64 in
    # another order than the reference's.
    ulp = np.spacing(np.abs(ref.to(x.dtype).numpy())).astype(np.float64)
    kept = torch.sort(x.double(), dim=0).values[lo:hi].abs().amax(dim=0).numpy()
    tol = 4 * ulp + 2 * (hi - lo) * np.finfo(np.float64).eps * kept
    err = np.abs(result.double().numpy() - ref.numpy())
    bad = np.nonzero(err > tol)[0]
    assert bad.size == 0, f"ranks {lo}..{hi - 1} of {x.shape[0]}: columns {bad[:10].tolist()} off by {err[bad[:10]].tolist()}"


def ranks(n: int) -> list[tuple[int, int]]:
    """(lo, hi): the median, trimmed means (beta 0.1 and 0.4), and ranges at the ends and inside."""
    out = [((n - 1) // 2, n // 2 + 1)]
    for beta in (0.1, 0.4):
        b = int(beta * n)
        out.append((b, n - b))
    return out + [(0, 1), (n - 1, n), (0, n), (3, 5), (n // 3, n // 3 + 17)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", ROWS)
def test_ranks_mean_matches_torch_sort(n, dtype, path):
    x = adversarial_block(n, 301, dtype, seed=n)
    for lo, hi in ranks(n):
        assert_close(_sortnet.middle_mean(x, lo, hi), x, lo, hi)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", ROWS)
def test_median_and_trimmed_mean_match_torch_sort(n, dtype, path):
    x = adversarial_block(n, 257, dtype, seed=1000 + n)
    median = coordinate_median(x)
    assert_close(median, x, (n - 1) // 2, n // 2 + 1)
    if n % 2:  # exactly the middle value
        assert torch.equal(median, torch.sort(x, dim=0).values[n // 2])
    for beta in (0.1, 0.2, 0.4):
        b = int(beta * n)
        assert_close(trimmed_mean(x, beta), x, b, n - b)


@pytest.mark.parametrize("n", [65, 1000])
def test_huge_values_are_kept_exactly(n, path):
    # Only +-3e38 and 0: every kept value is +-3e38 or 0, so each mean is exact in float64.
    gen = torch.Generator().manual_seed(n)
    x = torch.tensor([-3e38, 0.0, 3e38])[torch.randint(0, 3, (n, 500), generator=gen)]
    ref = torch.sort(x.double(), dim=0).values
    assert torch.equal(coordinate_median(x), ref[(n - 1) // 2 : n // 2 + 1].mean(0).float())
    assert torch.isfinite(trimmed_mean(x, 0.1)).all()
    assert_close(trimmed_mean(x, 0.1), x, int(0.1 * n), n - int(0.1 * n))


def test_results_do_not_depend_on_the_column_order_or_threads(path):
    # Each column is computed on its own, the same way: shuffling columns shuffles the results.
    x = adversarial_block(200, 1000, torch.float32, seed=3)
    perm = torch.randperm(1000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(trimmed_mean(x[:, perm], 0.2), trimmed_mean(x, 0.2)[perm])
    threads = _sortnet.numba.get_num_threads()
    try:
        _sortnet.numba.set_num_threads(1)
        single = trimmed_mean(x, 0.2)
    finally:
        _sortnet.numba.set_num_threads(threads)
    assert torch.equal(single, trimmed_mean(x, 0.2))


@pytest.mark.parametrize("passes", [0, 1, 2])
@pytest.mark.parametrize("n", [65, 257])
def test_sorting_fallback_after_the_pass_budget(n, passes):
    # With no passes left the segments are heap-sorted (the adversarial worst case's path).
    x = adversarial_block(n, 203, torch.float64, seed=7)
    arr = x.numpy()
    for lo, hi in ranks(n):
        out = np.empty(arr.shape[1])
        _sortnet._middle_mean_select_kernel(arr, lo, hi, out, 5, 3, passes)
        assert_close(torch.from_numpy(out), x, lo, hi)


def test_sort16_sorts_every_small_input():
    rng = np.random.default_rng(0)
    for trial in range(300):
        values = rng.integers(-3, 4, 16).astype(np.float32) if trial % 2 else rng.standard_normal(16).astype(np.float32)
        a = values.copy()
        _sortnet._sort16(a)
        assert np.array_equal(a, np.sort(values))


def _best(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize("n", [1000])
def test_adversarial_columns_take_no_longer_than_random_ones(n, path):
    # Behaviour, not an absolute timing: a quadratic selection would take ~n/log n times longer.
    d = 3000
    gen = torch.Generator().manual_seed(0)
    random = torch.randn(n, d, generator=gen)
    ramp = torch.arange(n, dtype=torch.float32)[:, None].expand(n, d)
    blocks = {
        "all equal": torch.full((n, d), 2.5),
        "sorted": ramp.contiguous(),
        "reversed": (-ramp).contiguous(),
        "two values": torch.randint(0, 2, (n, d), generator=gen).float(),
        "organ pipe": torch.where(ramp < n // 2, ramp, n - ramp).contiguous(),
    }
    coordinate_median(random)  # compiled before timing
    for rule in (coordinate_median, lambda y: trimmed_mean(y, 0.2)):
        base = _best(lambda: rule(random))
        for name, block in blocks.items():
            took = _best(lambda: rule(block))
            assert took < 20 * base + 0.05, f"{name}: {took:.3f} s against {base:.3f} s for random columns"
