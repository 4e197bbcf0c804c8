"""Compiled kernels for coordinate-wise order statistics (optional numba path).

For small n (up to ``MAX_ROWS``), each column is sorted by a fixed network of compare-exchange
operations, vectorised across columns; for more rows, each column is gathered and split with two
partial partitions (O(n) per column). Both are far faster than ``torch.sort`` or ``torch.median``
along dim 0. The kernels are compiled with numba when it is installed (``pip install
fedrobust[fast]``); without numba, or for tensors not on the CPU, callers fall back to pure torch.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

try:  # optional accelerated path
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised where numba is absent
    numba = None
    HAVE_NUMBA = False

#: Largest number of rows the network path handles; above it the torch path is used.
MAX_ROWS = 64


def _batcher_pairs(m: int) -> list[tuple[int, int]]:
    """Batcher's odd-even merge sort network on ``m`` wires (a power of two)."""
    pairs = []
    p = 1
    while p < m:
        k = p
        while k >= 1:
            for j in range(k % p, m - k, 2 * k):
                for i in range(min(k, m - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return pairs


@functools.lru_cache(maxsize=None)
def network(n: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Compare-exchange pairs that place the ranks ``lo..hi-1`` of ``n`` values correctly.

    Built from Batcher's network on the next power of two; wires at or past ``n`` carry +inf and
    are dropped, and so are comparators that cannot affect the wanted ranks.

    Examples
    --------
    >>> a, b = network(3, 0, 3)
    >>> len(a)
    3
    """
    m = 1
    while m < n:
        m *= 2
    pairs = [(a, b) for a, b in _batcher_pairs(m) if b < n]
    needed = set(range(lo, hi))
    kept = []
    for a, b in reversed(pairs):
        if a in needed or b in needed:
            needed.update((a, b))
            kept.append((a, b))
    kept.reverse()
    first = np.array([a for a, _ in kept], dtype=np.int64)
    second = np.array([b for _, b in kept], dtype=np.int64)
    return first, second


if HAVE_NUMBA:

    @numba.njit(parallel=True, cache=True)
    def _middle_mean_kernel(x, first, second, lo, hi, out, tile, nparts):  # pragma: no cover
        n, d = x.shape
        ntiles = (d + tile - 1) // tile
        nparts = min(ntiles, nparts)
        per_part = (ntiles + nparts - 1) // nparts
        scale = 1.0 / (hi - lo)
        for part in numba.prange(nparts):
            buf = np.empty((n, tile), dtype=x.dtype)  # one buffer per part, reused for its tiles
            for t in range(part * per_part, min(ntiles, (part + 1) * per_part)):
                j0 = t * tile
                w = min(tile, d - j0)
                for i in range(n):
                    for c in range(w):
                        buf[i, c] = x[i, j0 + c]
                for p in range(first.shape[0]):
                    a = first[p]
                    b = second[p]
                    for c in range(w):
                        u = buf[a, c]
                        v = buf[b, c]
                        buf[a, c] = u if u < v else v
                        buf[b, c] = v if u < v else u
                for c in range(w):
                    s = 0.0
                    for i in range(lo, hi):
                        s += buf[i, c]
                    out[j0 + c] = s * scale


    @numba.njit(parallel=True, cache=True)
    def _middle_mean_select_kernel(x, lo, hi, out, tile, nparts):  # pragma: no cover - compiled
        n, d = x.shape
        ntiles = (d + tile - 1) // tile
        nparts = min(ntiles, nparts)
        per_part = (ntiles + nparts - 1) // nparts
        scale = 1.0 / (hi - lo)
        for part in numba.prange(nparts):
            buf = np.empty((tile, n), dtype=x.dtype)  # columns of the tile, made contiguous
            for t in range(part * per_part, min(ntiles, (part + 1) * per_part)):
                j0 = t * tile
                w = min(tile, d - j0)
                for i in range(n):
                    for c in range(w):
                        buf[c, i] = x[i, j0 + c]
                for c in range(w):
                    col = np.partition(buf[c], lo)  # ranks >= lo now sit at lo..n-1
                    tail = np.partition(col[lo:], hi - lo - 1)  # its hi-lo smallest come first
                    s = 0.0
                    for i in range(hi - lo):
                        s += tail[i]
                    out[j0 + c] = s * scale


def can_use(x: torch.Tensor) -> bool:
    """Whether a compiled kernel applies to ``x``."""
    return HAVE_NUMBA and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and not x.requires_grad


def middle_mean(x: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    """Per column, the mean of the sorted values at ranks ``lo..hi-1`` (compiled path).

    Callers check :func:`can_use` first.
    """
    arr = x.detach().contiguous().numpy()
    out = np.empty(arr.shape[1], dtype=arr.dtype)
    parts = 8 * numba.get_num_threads()
    n = x.shape[0]
    if n <= MAX_ROWS:
        first, second = network(n, lo, hi)
        _middle_mean_kernel(arr, first, second, lo, hi, out, 64, parts)
    else:
        _middle_mean_select_kernel(arr, lo, hi, out, max(1, 8192 // n), parts)
    return torch.from_numpy(out)
