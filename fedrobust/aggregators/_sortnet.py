"""Compiled kernels for coordinate-wise order statistics (optional numba path).

For small n (up to ``MAX_ROWS``), each column is sorted by a fixed network of compare-exchange
operations, vectorised across columns; for more rows, each column is gathered and split with two
partial partitions (O(n) per column). Both are far faster than ``torch.sort`` or ``torch.median``
along dim 0. The kernels are compiled with numba when it is installed (``pip install
fedrobust[fast]``); without numba, or for tensors not on the CPU, callers fall back to pure torch.

For up to ``REGISTER_MAX_ROWS`` rows and inputs of at least ``REGISTER_MIN_ELEMENTS`` entries, a
kernel written out for the one network (n, lo, hi) runs instead: every wire is a local variable, so
the compiler keeps a column group's n values in vector registers and each compare-exchange is one
min and one max, with no loads or stores (3-4 F at n = 32 against 8-15 F for the generic network
kernel). Its source is generated once, written to the cache directory (``FEDROBUST_CACHE_DIR``, or
``fedrobust/`` in the user's cache directory) and compiled by numba with its on-disk cache, so a
network is compiled once per machine (1-4 s at n = 32); small inputs, where that would not pay,
use the generic kernel.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

try:  # optional accelerated path
    import numba

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
    if n <= REGISTER_MAX_ROWS and arr.size >= REGISTER_MIN_ELEMENTS:
        register_kernel(n, lo, hi, arr.dtype.name)(arr, out, 4096)
    elif n <= MAX_ROWS:
        first, second = network(n, lo, hi)
        _middle_mean_kernel(arr, first, second, lo, hi, out, 64, parts)
    else:
        _middle_mean_select_kernel(arr, lo, hi, out, max(1, 8192 // n), parts)
    return torch.from_numpy(out)
