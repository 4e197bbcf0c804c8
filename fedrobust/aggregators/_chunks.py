"""Column chunking: process an (n, d) matrix in cache-sized column blocks."""

from __future__ import annotations

from collections.abc import Iterator

import torch

#: Elements per block (4 MiB of float32): large enough for efficient kernels, small enough for cache.
BLOCK_ELEMENTS = 1 << 20


def column_blocks(x: torch.Tensor, block_elements: int = BLOCK_ELEMENTS) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(start, x[:, start:start + c])`` over all columns, with ``c * n`` about ``block_elements``.

    Examples
    --------
    >>> [(s, b.shape[1]) for s, b in column_blocks(torch.zeros(2, 5), block_elements=4)]
    [(0, 2), (2, 2), (4, 1)]
    """
    n, d = x.shape
    columns = max(1, block_elements // max(1, n))
    for start in range(0, d, columns):
        yield start, x[:, start : start + columns]
