import numpy as np
import pytest
import torch
from scipy import stats

from fedrobust.aggregators import _sortnet, coordinate_median, trimmed_mean


@pytest.fixture(params=["network", "torch"])
def path(request, monkeypatch):
    """The generic compiled kernels, or torch."""
    if request.param == "torch":
        monkeypatch.setattr(_sortnet, "can_use", lambda x: False)
    elif not _sortnet.HAVE_NUMBA:
        pytest.skip("numba not installed (the 'fast' extra)")
    return request.param


@pytest.mark.skipif(not _sortnet.HAVE_NUMBA, reason="numba not installed (the 'fast' extra)")
@pytest.mark.parametrize(("n", "beta"), [(1, None), (4, None), (10, None), (31, None), (5, 0.2), (32, 0.2)])
def test_register_kernel_matches_numpy_and_scipy(n, beta, monkeypatch):
    # Forced on small inputs; each (n, ranks, dtype) compiles once per machine, so only a few here.
    monkeypatch.setattr(_sortnet, "REGISTER_MIN_ELEMENTS", 0)
    if beta is None:
        x = torch.randn(n, 777, generator=torch.Generator().manual_seed(n))
        assert np.allclose(coordinate_median(x).numpy(), np.median(x.numpy(), axis=0), atol=1e-6)
    else:
        x = torch.randn(n, 513, generator=torch.Generator().manual_seed(n), dtype=torch.float64)
        assert np.allclose(trimmed_mean(x, beta).numpy(), stats.trim_mean(x.numpy(), beta, axis=0), atol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 10, 31, 32, 33, 64, 65])
def test_median_matches_numpy(n, path):
    x = torch.randn(n, 777, generator=torch.Generator().manual_seed(n))
    assert np.allclose(coordinate_median(x).numpy(), np.median(x.numpy(), axis=0), atol=1e-6)


@pytest.mark.parametrize("n, beta", [(3, 0.2), (5, 0.2), (10, 0.1), (10, 0.25), (32, 0.2), (40, 0.45), (64, 0.3), (100, 0.3), (101, 0.1)])
def test_trimmed_mean_matches_scipy(n, beta, path):
    x = torch.randn(n, 513, generator=torch.Generator().manual_seed(n), dtype=torch.float64)
    assert np.allclose(trimmed_mean(x, beta).numpy(), stats.trim_mean(x.numpy(), beta, axis=0), atol=1e-12)


@pytest.mark.skipif(not _sortnet.HAVE_NUMBA, reason="numba not installed (the 'fast' extra)")
@pytest.mark.parametrize(("n", "beta"), [(13, 0.25), (32, 0.2)])
def test_register_kernel_equals_the_generic_kernel_exactly(n, beta, monkeypatch):
    # Both paths sum the kept ranks in float64 in the same order: identical float32 results,
    # also with ties (small integers) and on an input large enough to take the register path.
    x = torch.randint(-3, 4, (n, 70_001), generator=torch.Generator().manual_seed(n)).float()
    x[:, ::2] = torch.randn(n, 35_001, generator=torch.Generator().manual_seed(1))
    register = trimmed_mean(x, beta)
    monkeypatch.setattr(_sortnet, "REGISTER_MAX_ROWS", 0)
    assert torch.equal(register, trimmed_mean(x, beta))


@pytest.mark.skipif(not _sortnet.HAVE_NUMBA, reason="numba not installed (the 'fast' extra)")
def test_register_kernel_compiles_in_memory_without_a_cache_directory(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("FEDROBUST_CACHE_DIR", str(blocker))
    assert _sortnet._cache_dir() is None
    x = torch.randn(3, 10, generator=torch.Generator().manual_seed(0))
    out = np.empty(10, dtype=np.float32)
    _sortnet.register_kernel.__wrapped__(3, 1, 2, "float32")(x.numpy(), out, 4)
    assert np.array_equal(out, np.median(x.numpy(), axis=0))


@pytest.mark.skipif(not _sortnet.HAVE_NUMBA, reason="numba not installed (the 'fast' extra)")
def test_register_kernel_source_is_cached_by_content(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDROBUST_CACHE_DIR", str(tmp_path))
    kernel = _sortnet.register_kernel.__wrapped__(4, 1, 3, "float64")
    files = list((tmp_path / "sortnet").glob("sortnet_4_1_3_*.py"))
    assert len(files) == 1 and files[0].read_text() == _sortnet.register_source(4, 1, 3)
    x = np.array([[4.0, 1.0], [1.0, 2.0], [3.0, 9.0], [2.0, 0.0]])
    out = np.empty(2)
    kernel(x, out, 4096)
    assert np.array_equal(out, [2.5, 1.5])


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


@pytest.mark.skipif(not _sortnet.HAVE_NUMBA, reason="numba not installed (the 'fast' extra)")
@pytest.mark.parametrize(("n", "beta", "dtype"),
                         [(33, 0.2, torch.float32), (48, 0.1, torch.float64), (64, 0.3, torch.float32)])
def test_sort_route_equals_the_network_kernel_exactly(n, beta, dtype, monkeypatch):
    # The same sorted values summed in the same order (float64, rank by rank): identical results,
    # also with ties (small integers), a +-3e38 column and -0.0 beside 0.0, at one thread and two.
    x = torch.randint(-3, 4, (n, 9_001), generator=torch.Generator().manual_seed(n)).to(dtype)
    x[:, ::2] = torch.randn(n, 4_501, generator=torch.Generator().manual_seed(1), dtype=dtype)
    x[:, 1] = torch.tensor([-3e38, 3e38, 1.0], dtype=dtype)[torch.arange(n) % 3]
    x[:, 3] = torch.where(torch.arange(n) % 2 == 0, -0.0, 0.0).to(dtype)
    monkeypatch.setattr(_sortnet, "sort_route_applies", lambda n, dtype, size: False)
    network = trimmed_mean(x, beta), coordinate_median(x)
    taken = []
    route = _sortnet._sort_route
    monkeypatch.setattr(_sortnet, "sort_route_applies", lambda n, dtype, size: True)
    monkeypatch.setattr(_sortnet, "_sort_route", lambda *a: (taken.append(a[-1]), route(*a)))
    threads = _sortnet.numba.get_num_threads()
    for count in sorted({1, threads}):
        _sortnet.numba.set_num_threads(count)
        try:
            assert torch.equal(trimmed_mean(x, beta), network[0])
            assert torch.equal(coordinate_median(x), network[1])
        finally:
            _sortnet.numba.set_num_threads(threads)
    assert taken and set(taken) == {1, threads}


@pytest.mark.skipif(not _sortnet.HAVE_NUMBA, reason="numba not installed (the 'fast' extra)")
def test_sort_route_applies_between_its_row_bounds_on_large_inputs():
    avx512 = _sortnet._numpy_sorts_with_avx512()
    big = _sortnet.SORT_ROUTE_MIN_ELEMENTS
    assert not _sortnet.sort_route_applies(_sortnet.SORT_ROUTE_MIN_ROWS - 1, "float32", big)
    assert _sortnet.sort_route_applies(_sortnet.SORT_ROUTE_MIN_ROWS, "float32", big) == avx512
    assert _sortnet.sort_route_applies(512, "float32", big) == avx512
    assert not _sortnet.sort_route_applies(513, "float32", big)
    assert _sortnet.sort_route_applies(256, "float64", big) == avx512
    assert not _sortnet.sort_route_applies(257, "float64", big)
    assert not _sortnet.sort_route_applies(100, "float32", big - 1)
    assert not _sortnet.sort_route_applies(100, "float16", big)


@pytest.mark.skipif(not _sortnet.HAVE_NUMBA, reason="numba not installed (the 'fast' extra)")
def test_sort_route_leaves_no_thread_behind_and_raises_a_helpers_error(monkeypatch):
    # Its helper threads are the call's own: none is alive after it (the command line's exit after a
    # Ctrl-C ends the process at once when a non-daemon thread is left), and an error in one of
    # them reaches the caller.
    import threading

    monkeypatch.setattr(_sortnet, "sort_route_applies", lambda n, dtype, size: n > _sortnet.REGISTER_MAX_ROWS)
    monkeypatch.setattr(_sortnet, "_SORT_PART_ELEMENTS", 1)
    threads = _sortnet.numba.get_num_threads()
    x = torch.randn(100, 3000, generator=torch.Generator().manual_seed(0))
    _sortnet.numba.set_num_threads(1)
    try:
        alone = trimmed_mean(x, 0.2)  # no helper
    finally:
        _sortnet.numba.set_num_threads(threads)
    _sortnet.numba.set_num_threads(2)
    try:
        before = set(threading.enumerate())
        seen = []
        gather = _sortnet._gather_tile

        def spy(*args):
            seen.append(threading.current_thread().name)
            return gather(*args)

        monkeypatch.setattr(_sortnet, "_gather_tile", spy)
        assert torch.equal(trimmed_mean(x, 0.2), alone)
        assert "fedrobust-sort" in seen  # a helper did take a part
        assert set(threading.enumerate()) == before

        def broken(arr, j0, w, buf):
            if threading.current_thread().name == "fedrobust-sort":
                raise MemoryError("a helper's error")
            return gather(arr, j0, w, buf)

        monkeypatch.setattr(_sortnet, "_gather_tile", broken)
        with pytest.raises(MemoryError, match="a helper's error"):
            trimmed_mean(x, 0.2)
        assert set(threading.enumerate()) == before
    finally:
        _sortnet.numba.set_num_threads(threads)
