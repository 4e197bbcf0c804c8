"""Compiled kernels for coordinate-wise order statistics (optional numba path).

For small n (up to ``MAX_ROWS``), each column is sorted by a fixed network of compare-exchange
operations, vectorised across columns. For more rows, a tile of columns is gathered into contiguous
rows of a buffer and each column is reduced by counting steps, with no allocation and no data-
dependent branch inside a pass: 16 values at evenly spaced positions are sorted by a network, 8 of
them around the wanted ranks are counted against every value (one vectorised pass gives their exact
ranks), the values between the candidates that enclose a cut (rank lo or rank hi) are copied to a
second buffer (a branch-free pass), those between the cuts are summed, and the copies are the next
step's input, until 16 or fewer remain, which the network sorts. A step keeps about 1/17 of its
values, so a column of n values costs a few passes over n; each step removes at least the values of
one candidate, and after ``select_passes(n)`` steps the rest is heap-sorted, so no input (equal
values, sorted or adversarially ordered columns) takes more than O(n log n). The kept values are
summed in float64 (in an order that may depend on the processor's vector width). Both paths are far
faster than ``torch.sort`` or ``torch.median`` along dim 0. The kernels are compiled with numba when
it is installed (``pip install fedrobust[fast]``); without numba, or for tensors not on the CPU,
callers fall back to pure torch.

For up to ``REGISTER_MAX_ROWS`` rows and inputs of at least ``REGISTER_MIN_ELEMENTS`` entries, a
kernel written out for the one network (n, lo, hi) runs instead: every wire is a local variable, so
the compiler keeps a column group's n values in vector registers and each compare-exchange is one
min and one max, with no loads or stores (3-4 F at n = 32 against 8-15 F for the generic network
kernel). Its source is generated once, written to the cache directory (``FEDROBUST_CACHE_DIR``, or
``fedrobust/`` in the user's cache directory) and compiled by numba with its on-disk cache, so a
network is compiled once per machine (1-4 s at n = 32); small inputs, where that would not pay,
use the generic kernel.

From ``SORT_ROUTE_MIN_ROWS`` (33) rows up to ``SORT_ROUTE_MAX_ROWS`` (512 float32 or 256 float64
values), where NumPy sorts with AVX-512, each tile of columns is gathered into contiguous rows
(:func:`sort_route_applies`), sorted row by row by NumPy's own sort, which sorts that many values
in vector registers, and the kept ranks are summed as the network kernels sum them (float64, in
rank order), in one thread per part of the columns (NumPy's sort and the compiled parts release
the GIL). Measured on an AVX-512 CPU (d = 100,000, float32, one thread): the trimmed mean
(beta = 0.2) at n = 100 in 23 ms against 72 ms for the selection kernel and 32 ms for
``np.sort(axis=0)`` (docs/performance.md has the other sizes). Past those sizes NumPy's sort leaves
its registers (at 513 float32 values its time per value grows fourfold) and the selection kernel
is faster; on other CPUs this route is not taken.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import torch

from ..core.threads import kept_torch_threads

try:  # optional accelerated path
    import numba
    from numba import uint64

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised where numba is absent
    numba = None
    HAVE_NUMBA = False

#: Largest number of rows the network path handles; above it the partition kernel is used.
MAX_ROWS = 64
#: Largest number of rows for which a network is written out as its own kernel.
REGISTER_MAX_ROWS = 32
#: Smallest input (n·d entries) for which that kernel is used: below, compiling it would not pay.
REGISTER_MIN_ELEMENTS = 1 << 22
#: Fewest rows for the sort route (from here on the network kernels are slower, at one thread by half).
SORT_ROUTE_MIN_ROWS = REGISTER_MAX_ROWS + 1
#: Largest number of rows, per dtype, for the sort route (NumPy's AVX-512 sort of a row of that many
#: values stays in vector registers); 0 rows: not taken.
SORT_ROUTE_MAX_ROWS = {"float32": 512, "float64": 256}
#: Smallest input (n·d entries) for the sort route: below, a thread per part would not pay.
SORT_ROUTE_MIN_ELEMENTS = 1 << 19
#: Entries of one tile of the sort route (its columns times n): 256 KiB of float32, within L2.
_SORT_TILE_ELEMENTS = 1 << 16
#: Fewest entries per thread of the sort route.
_SORT_PART_ELEMENTS = 1 << 18
# Up to this many rows the written-out kernel reads row slices; above, 2-D indexing. Measured on an
# AVX-512 CPU (n = 10: 1.0 F against 5.0 F; n = 32: 2.9 F against 3.5 F).
_ROW_VIEWS_MAX_ROWS = 12


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


    # More than MAX_ROWS rows: each column is selected on its own (see the module docstring). The
    # loops index with unsigned integers (no negative-index wraparound code in them) and every pass
    # over a column is branch-free.

    @numba.njit(cache=True, nogil=True)
    def _sift_down(a, start, root, size):  # pragma: no cover - compiled
        v = a[start + root]
        while True:
            child = 2 * root + 1
            if child >= size:
                break
            if child + 1 < size and a[start + child + 1] > a[start + child]:
                child += 1
            if a[start + child] <= v:
                break
            a[start + root] = a[start + child]
            root = child
        a[start + root] = v

    @numba.njit(cache=True, nogil=True)
    def _heapsort(a, start, stop):  # pragma: no cover - compiled
        """Sort a[start:stop] in place in O(m log m) whatever the values (the budget's fallback)."""
        size = stop - start
        for root in range(size // 2 - 1, -1, -1):
            _sift_down(a, start, root, size)
        for end in range(size - 1, 0, -1):
            v = a[start + end]
            a[start + end] = a[start]
            a[start] = v
            _sift_down(a, start, 0, end)

    @numba.njit(cache=True, nogil=True)
    def _sort16(a):  # pragma: no cover - compiled
        """Sort a[0:16] in place: Batcher's network on 16 wires (``_batcher_pairs(16)``), each wire a
        local, so each compare-exchange is one min and one max."""
        v0, v1, v2, v3 = a[0], a[1], a[2], a[3]
        v4, v5, v6, v7 = a[4], a[5], a[6], a[7]
        v8, v9, v10, v11 = a[8], a[9], a[10], a[11]
        v12, v13, v14, v15 = a[12], a[13], a[14], a[15]
        v0, v1 = min(v0, v1), max(v0, v1)
        v2, v3 = min(v2, v3), max(v2, v3)
        v4, v5 = min(v4, v5), max(v4, v5)
        v6, v7 = min(v6, v7), max(v6, v7)
        v8, v9 = min(v8, v9), max(v8, v9)
        v10, v11 = min(v10, v11), max(v10, v11)
        v12, v13 = min(v12, v13), max(v12, v13)
        v14, v15 = min(v14, v15), max(v14, v15)
        v0, v2 = min(v0, v2), max(v0, v2)
        v1, v3 = min(v1, v3), max(v1, v3)
        v4, v6 = min(v4, v6), max(v4, v6)
        v5, v7 = min(v5, v7), max(v5, v7)
        v8, v10 = min(v8, v10), max(v8, v10)
        v9, v11 = min(v9, v11), max(v9, v11)
        v12, v14 = min(v12, v14), max(v12, v14)
        v13, v15 = min(v13, v15), max(v13, v15)
        v1, v2 = min(v1, v2), max(v1, v2)
        v5, v6 = min(v5, v6), max(v5, v6)
        v9, v10 = min(v9, v10), max(v9, v10)
        v13, v14 = min(v13, v14), max(v13, v14)
        v0, v4 = min(v0, v4), max(v0, v4)
        v1, v5 = min(v1, v5), max(v1, v5)
        v2, v6 = min(v2, v6), max(v2, v6)
        v3, v7 = min(v3, v7), max(v3, v7)
        v8, v12 = min(v8, v12), max(v8, v12)
        v9, v13 = min(v9, v13), max(v9, v13)
        v10, v14 = min(v10, v14), max(v10, v14)
        v11, v15 = min(v11, v15), max(v11, v15)
        v2, v4 = min(v2, v4), max(v2, v4)
        v3, v5 = min(v3, v5), max(v3, v5)
        v10, v12 = min(v10, v12), max(v10, v12)
        v11, v13 = min(v11, v13), max(v11, v13)
        v1, v2 = min(v1, v2), max(v1, v2)
        v3, v4 = min(v3, v4), max(v3, v4)
        v5, v6 = min(v5, v6), max(v5, v6)
        v9, v10 = min(v9, v10), max(v9, v10)
        v11, v12 = min(v11, v12), max(v11, v12)
        v13, v14 = min(v13, v14), max(v13, v14)
        v0, v8 = min(v0, v8), max(v0, v8)
        v1, v9 = min(v1, v9), max(v1, v9)
        v2, v10 = min(v2, v10), max(v2, v10)
        v3, v11 = min(v3, v11), max(v3, v11)
        v4, v12 = min(v4, v12), max(v4, v12)
        v5, v13 = min(v5, v13), max(v5, v13)
        v6, v14 = min(v6, v14), max(v6, v14)
        v7, v15 = min(v7, v15), max(v7, v15)
        v4, v8 = min(v4, v8), max(v4, v8)
        v5, v9 = min(v5, v9), max(v5, v9)
        v6, v10 = min(v6, v10), max(v6, v10)
        v7, v11 = min(v7, v11), max(v7, v11)
        v2, v4 = min(v2, v4), max(v2, v4)
        v3, v5 = min(v3, v5), max(v3, v5)
        v6, v8 = min(v6, v8), max(v6, v8)
        v7, v9 = min(v7, v9), max(v7, v9)
        v10, v12 = min(v10, v12), max(v10, v12)
        v11, v13 = min(v11, v13), max(v11, v13)
        v1, v2 = min(v1, v2), max(v1, v2)
        v3, v4 = min(v3, v4), max(v3, v4)
        v5, v6 = min(v5, v6), max(v5, v6)
        v7, v8 = min(v7, v8), max(v7, v8)
        v9, v10 = min(v9, v10), max(v9, v10)
        v11, v12 = min(v11, v12), max(v11, v12)
        v13, v14 = min(v13, v14), max(v13, v14)
        a[0], a[1], a[2], a[3] = v0, v1, v2, v3
        a[4], a[5], a[6], a[7] = v4, v5, v6, v7
        a[8], a[9], a[10], a[11] = v8, v9, v10, v11
        a[12], a[13], a[14], a[15] = v12, v13, v14, v15

    @numba.njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
    def _sum(a, start, stop):  # pragma: no cover - compiled
        """Sum (float64) of a[start:stop]; reassociated, so that it vectorises."""
        s = 0.0
        for i in range(uint64(start), uint64(stop)):
            s += a[i]
        return s

    @numba.njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
    def _sum_range(a, start, stop, p, q):  # pragma: no cover - compiled
        """Sum (float64) of the values v of a[start:stop] with p <= v < q."""
        s = 0.0
        for i in range(uint64(start), uint64(stop)):
            v = a[i]
            s += v if (v >= p) & (v < q) else 0.0
        return s

    @numba.njit(cache=True, nogil=True, fastmath={"reassoc"})
    def _count8(src, start, stop, smp, cnt):  # pragma: no cover - compiled
        """cnt[1 + k] = how many values of src[start:stop] are below smp[16 + k], k < 8 (counted in
        float32 so that the loop vectorises: exact up to 2**24 values)."""
        c0, c1, c2, c3 = smp[16], smp[17], smp[18], smp[19]
        c4, c5, c6, c7 = smp[20], smp[21], smp[22], smp[23]
        one = np.float32(1.0)
        zero = np.float32(0.0)
        n0 = n1 = n2 = n3 = n4 = n5 = n6 = n7 = zero
        for i in range(uint64(start), uint64(stop)):
            v = src[i]
            n0 += one if v < c0 else zero
            n1 += one if v < c1 else zero
            n2 += one if v < c2 else zero
            n3 += one if v < c3 else zero
            n4 += one if v < c4 else zero
            n5 += one if v < c5 else zero
            n6 += one if v < c6 else zero
            n7 += one if v < c7 else zero
        cnt[1], cnt[2], cnt[3], cnt[4] = int(n0), int(n1), int(n2), int(n3)
        cnt[5], cnt[6], cnt[7], cnt[8] = int(n4), int(n5), int(n6), int(n7)

    @numba.njit(cache=True, nogil=True)
    def _compact(src, start, stop, dst, p, q):  # pragma: no cover - compiled
        """Copy the values p < v < q of src[start:stop] to dst[start:], in order; return how many.
        Branch-free: every value is written, and its slot kept only if it is inside."""
        k = uint64(start)
        for i in range(uint64(start), uint64(stop)):
            v = src[i]
            dst[k] = v
            k += uint64((v > p) & (v < q))
        return np.int64(k) - start

    @numba.njit(cache=True, nogil=True)
    def _compact_union(src, start, stop, dst, p0, q0, p1, q1):  # pragma: no cover - compiled
        """_compact for the union of p0 < v < q0 and p1 < v < q1 (q0 <= p1): (how many in the first,
        how many in all)."""
        k = uint64(start)
        k0 = uint64(0)
        for i in range(uint64(start), uint64(stop)):
            v = src[i]
            dst[k] = v
            in0 = (v > p0) & (v < q0)
            k += uint64(in0 | ((v > p1) & (v < q1)))
            k0 += uint64(in0)
        return np.int64(k0), np.int64(k) - start

    @numba.njit(cache=True, nogil=True)
    def _bound(smp, t):  # pragma: no cover - compiled
        """Bound t of a step's ranges: -inf, the candidates smp[16:24] (ascending), +inf."""
        return smp[30] if t == 0 else smp[31] if t == 9 else smp[15 + t]

    @numba.njit(cache=True, nogil=True)
    def _push(stack, depth, start, m, buffer, lo, hi):  # pragma: no cover - compiled
        stack[depth, 0] = start
        stack[depth, 1] = m
        stack[depth, 2] = buffer
        stack[depth, 3] = lo
        stack[depth, 4] = hi
        return depth + 1

    @numba.njit(cache=True, nogil=True)
    def _copies(value, first, count, lo, hi):  # pragma: no cover - compiled
        """value times how many of the ranks first..first+count-1 lie in lo..hi-1."""
        g = min(hi, first + count) - max(lo, first)
        return value * g if g > 0 else 0.0

    @numba.njit(cache=True, nogil=True)
    def _step(src, dst, dst_id, start, m, lo, hi, stack, depth, smp, cnt, passes_left):  # pragma: no cover
        """One step on the m values src[start:start + m], of which the sorted ranks lo..hi-1 are
        wanted (0 <= lo < hi <= m, not all): (the sum resolved, the stack depth after pushing what
        is left, in dst, passes left)."""
        stop = start + m
        if m <= 16:  # few values: sorted by the network, padded with +inf
            for j in range(m):
                smp[j] = src[start + j]
            for j in range(m, 16):
                smp[j] = smp[31]
            _sort16(smp)
            return _sum(smp, lo, hi), depth, passes_left
        if passes_left <= 0:  # the column's budget is spent: O(m log m) from here
            _heapsort(src, start, stop)
            return _sum(src, start + lo, start + hi), depth, passes_left
        if hi - lo == 1 and (lo == 0 or hi == m):  # the smallest or the largest value
            v = src[start]
            if lo == 0:
                for i in range(start + 1, stop):
                    v = min(v, src[i])
            else:
                for i in range(start + 1, stop):
                    v = max(v, src[i])
            return v + 0.0, depth, passes_left
        passes_left -= 1
        for j in range(16):  # a sample at evenly spaced positions, sorted
            smp[j] = src[start + ((2 * j + 1) * m) // 32]
        _sort16(smp)
        # 8 of them as candidates: 4 around each cut (rank lo, rank hi), or 8 around a close pair
        # or the one cut there is (lo == 0 or hi == m)
        e0 = (lo * 17) // m - 1
        e1 = (hi * 17) // m - 1
        if lo > 0 and hi < m and e1 - e0 >= 4:
            for k in range(4):
                smp[16 + k] = smp[min(15, max(0, e0 - 1 + k))]
                smp[20 + k] = smp[min(15, max(0, e1 - 1 + k))]
        else:
            e = e1 if lo == 0 else e0 if hi == m else (e0 + e1) // 2
            for k in range(8):
                smp[16 + k] = smp[min(15, max(0, e - 3 + k))]
        # their exact ranks: the values in [b_t, b_t+1) are the ranks cnt[t]..cnt[t+1]-1
        cnt[0] = 0
        _count8(src, start, stop, smp, cnt)
        cnt[9] = m
        t_lo = 0
        t_hi = 0
        for t in range(1, 10):
            if cnt[t] <= lo:
                t_lo = t
            if cnt[t] <= hi:
                t_hi = t
        cut_lo = cnt[t_lo] < lo  # rank lo falls inside range t_lo (else on its lower bound)
        cut_hi = cnt[t_hi] < hi
        if cut_lo and cut_hi and t_lo == t_hi:  # both in one range: its values are the child
            p = _bound(smp, t_lo)
            k = _compact(src, start, stop, dst, p, _bound(smp, t_lo + 1))
            eq = cnt[t_lo + 1] - cnt[t_lo] - k  # the copies of p, at the range's first ranks
            total = _copies(p, cnt[t_lo], eq, lo, hi)
            f = max(lo - cnt[t_lo] - eq, 0)
            g = min(hi - cnt[t_lo] - eq, k)
            if g > f:
                if f == 0 and g == k:
                    total += _sum(dst, start, start + k)
                else:
                    depth = _push(stack, depth, start, k, dst_id, f, g)
            return total, depth, passes_left
        total = 0.0
        a = t_lo + 1 if cut_lo else t_lo
        if cnt[t_hi] > cnt[a]:  # the ranges between the cuts: all wanted
            total += _sum_range(src, start, stop, _bound(smp, a), _bound(smp, t_hi))
        if cut_lo or cut_hi:
            # one child: the values strictly inside the ranges a cut falls in (the first range's
            # are all below the second's); the copies of each range's lower bound are counted
            u0 = t_lo if cut_lo else t_hi
            u1 = t_hi if cut_hi else t_lo
            p0 = _bound(smp, u0)
            p1 = _bound(smp, u1)
            if u0 == u1:
                k = _compact(src, start, stop, dst, p0, _bound(smp, u0 + 1))
                k0 = k
            else:
                k0, k = _compact_union(src, start, stop, dst, p0, _bound(smp, u0 + 1), p1, _bound(smp, u1 + 1))
            eq0 = cnt[u0 + 1] - cnt[u0] - k0
            total += _copies(p0, cnt[u0], eq0, lo, hi)
            f = max(0, lo - cnt[u0] - eq0)
            if u0 == u1:
                g = min(k, hi - cnt[u0] - eq0)
            else:
                eq1 = cnt[u1 + 1] - cnt[u1] - (k - k0)
                total += _copies(p1, cnt[u1], eq1, lo, hi)
                g = k0 + max(0, min(k - k0, hi - cnt[u1] - eq1))
            if g > f:
                if f == 0 and g == k:
                    total += _sum(dst, start, start + k)
                else:
                    depth = _push(stack, depth, start, k, dst_id, f, g)
        return total, depth, passes_left

    @numba.njit(cache=True, nogil=True)
    def _ranks_sum(a, b, lo, hi, smp, cnt, stack, passes):  # pragma: no cover - compiled
        """Sum (float64) of the sorted values at ranks lo..hi-1 of ``a`` (overwritten; ``b``, of the
        same length, and the rest are scratch), after at most ``passes`` counting steps."""
        n = a.shape[0]
        if lo == 0 and hi == n:
            return _sum(a, 0, n)
        total, depth, left = _step(a, b, 1, 0, n, lo, hi, stack, 0, smp, cnt, passes)
        while depth > 0:  # at most two segments wait: one per cut
            depth -= 1
            start = stack[depth, 0]
            m = stack[depth, 1]
            slo = stack[depth, 3]
            shi = stack[depth, 4]
            if stack[depth, 2]:
                t, depth, left = _step(b, a, 0, start, m, slo, shi, stack, depth, smp, cnt, left)
            else:
                t, depth, left = _step(a, b, 1, start, m, slo, shi, stack, depth, smp, cnt, left)
            total += t
        return total

    @numba.njit(cache=True, nogil=True)
    def _gather_tile(x, j0, w, buf):  # pragma: no cover - compiled
        """buf[c, i] = x[i, j0 + c] for the w columns from j0: the tile's columns made contiguous."""
        n = x.shape[0]
        i = 0
        while i + 8 <= n:  # eight rows at a time: fewer passes over the buffer
            for c in range(w):
                buf[c, i] = x[i, j0 + c]
                buf[c, i + 1] = x[i + 1, j0 + c]
                buf[c, i + 2] = x[i + 2, j0 + c]
                buf[c, i + 3] = x[i + 3, j0 + c]
                buf[c, i + 4] = x[i + 4, j0 + c]
                buf[c, i + 5] = x[i + 5, j0 + c]
                buf[c, i + 6] = x[i + 6, j0 + c]
                buf[c, i + 7] = x[i + 7, j0 + c]
            i += 8
        while i < n:
            for c in range(w):
                buf[c, i] = x[i, j0 + c]
            i += 1

    @numba.njit(cache=True, nogil=True)
    def _sorted_rows_mean(rows, lo, hi, out):  # pragma: no cover - compiled
        """out[c] = the mean of rows[c, lo:hi] (each row sorted), summed as the network kernels sum."""
        scale = 1.0 / (hi - lo)
        for c in range(rows.shape[0]):
            s = 0.0
            for i in range(lo, hi):
                s += rows[c, i]
            out[c] = s * scale

    @numba.njit(parallel=True, cache=True)
    def _middle_mean_select_kernel(x, lo, hi, out, tile, nparts, passes):  # pragma: no cover - compiled
        n, d = x.shape
        ntiles = (d + tile - 1) // tile
        nparts = min(ntiles, nparts)
        per_part = (ntiles + nparts - 1) // nparts
        scale = 1.0 / (hi - lo)
        for part in numba.prange(nparts):
            buf = np.empty((tile, n), dtype=x.dtype)  # columns of the tile, made contiguous
            other = np.empty(n, dtype=x.dtype)  # where a column's steps write
            smp = np.empty(32, dtype=x.dtype)  # sample, candidates, -inf and +inf
            smp[30] = -np.inf
            smp[31] = np.inf
            cnt = np.empty(10, dtype=np.int64)
            stack = np.empty((4, 5), dtype=np.int64)
            for t in range(part * per_part, min(ntiles, (part + 1) * per_part)):
                j0 = t * tile
                w = min(tile, d - j0)
                _gather_tile(x, j0, w, buf)
                for c in range(w):
                    out[j0 + c] = _ranks_sum(buf[c], other, lo, hi, smp, cnt, stack, passes) * scale


def register_source(n: int, lo: int, hi: int, cache: bool = True) -> str:
    """Python source of a numba kernel that computes the ranks ``lo..hi-1`` mean of ``n`` rows with
    the network's wires as local variables (``cache``: numba's on-disk cache, for a source file).

    The kernel ``kernel(x, out, block)`` splits the columns into ``block``-sized parts run in
    parallel. Each output is ``((0.0 + v_lo) + v_lo+1 + ...) * (1 / (hi - lo))`` in float64, the
    generic kernel's arithmetic, so both give identical results.

    Examples
    --------
    >>> print(register_source(2, 0, 1).split("for c in")[1])
     range(stop - start):
                v0 = r0[c]
                v1 = r1[c]
                v0, v1 = min(v0, v1), max(v0, v1)
                o[c] = (0.0 + v0) * 1.0
    <BLANKLINE>
    """
    first, second = network(n, lo, hi)
    views = n <= _ROW_VIEWS_MAX_ROWS
    lines = [
        f"# Generated by fedrobust.aggregators._sortnet: ranks {lo}..{hi - 1} of {n} rows.",
        "import numba",
        "",
        "",
        f"@numba.njit(parallel=True, cache={cache}, nogil=True)",
        "def kernel(x, out, block):",
        "    d = x.shape[1]",
        "    for b in numba.prange((d + block - 1) // block):",
        "        start = b * block",
        "        stop = min(d, start + block)",
    ]
    if views:
        lines += [f"        r{i} = x[{i}, start:stop]" for i in range(n)]
        lines += ["        o = out[start:stop]", "        for c in range(stop - start):"]
        lines += [f"            v{i} = r{i}[c]" for i in range(n)]
    else:
        lines += ["        for c in range(start, stop):"]
        lines += [f"            v{i} = x[{i}, c]" for i in range(n)]
    lines += [f"            v{a}, v{b} = min(v{a}, v{b}), max(v{a}, v{b})" for a, b in zip(first.tolist(), second.tolist())]
    total = " + ".join(["(0.0"] + [f"v{i}" for i in range(lo, hi)]) + ")"
    lines.append(f"            {'o' if views else 'out'}[c] = {total} * {1.0 / (hi - lo)!r}")
    return "\n".join(lines) + "\n"


def _cache_dir() -> Path | None:
    """Where generated kernels and numba's caches of them live; None when it cannot be created."""
    try:
        root = os.environ.get("FEDROBUST_CACHE_DIR")
        if root:
            path = Path(root)
        else:
            path = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fedrobust"
        path = path / "sortnet"
        path.mkdir(parents=True, exist_ok=True)
    except (OSError, RuntimeError):  # RuntimeError: Path.home() without a home directory
        return None
    return path if os.access(path, os.W_OK) else None


@functools.lru_cache(maxsize=None)
def register_kernel(n: int, lo: int, hi: int, dtype: str):
    """The kernel of :func:`register_source`, compiled for C-contiguous ``dtype`` arrays (numba required).

    The source goes to a file named by its hash (written once, atomically) and is imported from
    there, so numba caches the compiled code beside it. When the cache directory is missing or its
    files cannot be used, the kernel is compiled in memory instead (once per process).
    """
    source = register_source(n, lo, hi)
    directory = _cache_dir()
    if directory is not None:
        digest = hashlib.sha256(source.encode()).hexdigest()[:16]
        try:
            return _warm(_cached_kernel(source, directory / f"sortnet_{n}_{lo}_{hi}_{digest}.py"), n, dtype)
        except Exception:  # noqa: BLE001 - an unusable cache costs a compile, never a result
            pass
    namespace: dict = {}
    exec(compile(register_source(n, lo, hi, cache=False), f"<sortnet {n} {lo} {hi}>", "exec"), namespace)
    return _warm(namespace["kernel"], n, dtype)


def _cached_kernel(source: str, path: Path):
    """``kernel`` imported from ``path``, written with ``source`` first if absent."""
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(source)
        os.replace(tmp, path)
    name = f"fedrobust_generated_{path.stem}"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # numba's cache re-imports the module by name when it loads
        spec.loader.exec_module(module)
    return module.kernel


def _warm(kernel, n: int, dtype: str):
    """Compile (or load from the cache) ``kernel`` for ``dtype`` with one call on a tiny input."""
    kernel(np.zeros((n, 1), dtype=dtype), np.empty(1, dtype=dtype), 4096)
    return kernel


def select_passes(n: int) -> int:
    """How many partitioning passes a column of ``n`` values gets before its unresolved segments
    are sorted: ``8 + 2 floor(log2 n)`` (a pass usually leaves a small fraction of its segment;
    the budget bounds the work on adversarial columns at O(n log n)).

    Examples
    --------
    >>> select_passes(1000)
    26
    """
    return 8 + 2 * (n.bit_length() - 1)


def _numba_threads() -> int:
    """numba's thread count, torch's kept as it is.

    The first call starts numba's thread pool; on its OpenMP layer that sets OpenMP's thread count,
    which torch reads as its own, to numba's (every core), so a process that runs torch on fewer
    threads (a sweep job, a single-threaded check) would silently run it on all of them.
    """
    with kept_torch_threads():
        return numba.get_num_threads()


@functools.lru_cache(maxsize=None)
def _numpy_sorts_with_avx512() -> bool:
    """Whether NumPy's sort runs its AVX-512 kernels here (NumPy 2's CPU dispatch reports AVX512_SKX)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # NumPy 1: its private module has another name; the route was measured on NumPy 2
        return False
    return bool(__cpu_features__.get("AVX512_SKX"))


def sort_route_applies(n: int, dtype: str, size: int) -> bool:
    """Whether :func:`middle_mean` takes the sort route for ``n`` rows of ``dtype``, ``size`` entries.

    Examples
    --------
    >>> sort_route_applies(10, "float32", 10**6)  # the networks' rows
    False
    >>> sort_route_applies(100, "float32", 10_000)  # too small to pay for its threads
    False
    """
    return (
        SORT_ROUTE_MIN_ROWS <= n <= SORT_ROUTE_MAX_ROWS.get(dtype, 0)
        and size >= SORT_ROUTE_MIN_ELEMENTS
        and _numpy_sorts_with_avx512()
    )


def _sort_route(arr: np.ndarray, lo: int, hi: int, out: np.ndarray, threads: int) -> None:
    """out = per column, the mean of the sorted values at ranks lo..hi-1: tiles of columns gathered
    into contiguous rows, sorted by NumPy, their kept ranks summed; the tiles dealt to ``threads``."""
    n, d = arr.shape
    tile = max(16, _SORT_TILE_ELEMENTS // n)
    starts = range(0, d, tile)

    def part(k: int, parts: int) -> None:
        buf = np.empty((tile, n), dtype=arr.dtype)
        for j0 in starts[k::parts]:
            w = min(tile, d - j0)
            _gather_tile(arr, j0, w, buf)
            rows = buf[:w]
            rows.sort(axis=1)
            _sorted_rows_mean(rows, lo, hi, out[j0 : j0 + w])

    # One part per thread, each of at least _SORT_PART_ELEMENTS entries (a thread costs about 0.1 ms
    # to start and join); this thread takes the first. Threads of the call's own, so none is left
    # behind (a kept pool would outlive the call, and a forked child would inherit it without its
    # threads).
    parts = max(1, min(threads, len(starts), arr.size // _SORT_PART_ELEMENTS))
    failures: list[BaseException] = []

    def guarded(k: int) -> None:
        try:
            part(k, parts)
        except BaseException as err:  # noqa: BLE001 - re-raised in the calling thread
            failures.append(err)

    helpers = [threading.Thread(target=guarded, args=(k,), name="fedrobust-sort") for k in range(1, parts)]
    for helper in helpers:
        helper.start()
    try:
        part(0, parts)
    finally:
        for helper in helpers:
            helper.join()
    if failures:
        raise failures[0]


def can_use(x: torch.Tensor) -> bool:
    """Whether a compiled kernel applies to ``x``."""
    return HAVE_NUMBA and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and not x.requires_grad


def middle_mean(x: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    """Per column, the mean of the sorted values at ranks ``lo..hi-1`` (compiled path).

    Callers check :func:`can_use` first.
    """
    arr = x.detach().contiguous().numpy()
    out = np.empty(arr.shape[1], dtype=arr.dtype)
    threads = _numba_threads()
    parts = 8 * threads
    n = x.shape[0]
    if n <= REGISTER_MAX_ROWS and arr.size >= REGISTER_MIN_ELEMENTS:
        register_kernel(n, lo, hi, arr.dtype.name)(arr, out, 4096)
    elif sort_route_applies(n, arr.dtype.name, arr.size):
        _sort_route(arr, lo, hi, out, threads)
    elif n <= MAX_ROWS:
        first, second = network(n, lo, hi)
        _middle_mean_kernel(arr, first, second, lo, hi, out, 64, parts)
    else:
        _middle_mean_select_kernel(arr, lo, hi, out, max(8, min(64, 65536 // n)), parts, select_passes(n))
    return torch.from_numpy(out)
