"""A flat float32 parameter vector ↔ the list of per-tensor NumPy arrays Flower sends on the wire.

Examples
--------
>>> import torch
>>> arrays = to_ndarrays(torch.arange(6.0), [(2, 2), (2,)])
>>> [a.shape for a in arrays]
[(2, 2), (2,)]
>>> flatten(arrays)
tensor([0., 1., 2., 3., 4., 5.])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["to_ndarrays", "flatten", "payload_bytes"]


def to_ndarrays(vec: torch.Tensor, shapes: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
    """Split a flat vector into float32 arrays of the given shapes (views of one host copy).

    Raises
    ------
    ValueError
        If the vector's length is not the total size of ``shapes``.
    """
    flat = vec.detach().to("cpu", torch.float32).reshape(-1).numpy()
    sizes = [int(np.prod(s)) for s in shapes]
    if flat.size != sum(sizes):
        raise ValueError(f"vec has {flat.size} entries but shapes {list(shapes)} need {sum(sizes)}")
    ends = np.cumsum(sizes)[:-1]
    return [part.reshape(s) for part, s in zip(np.split(flat, ends), shapes)]


def flatten(arrays: Sequence[np.ndarray], out: np.ndarray | None = None) -> torch.Tensor:
    """Concatenate arrays into one flat float32 CPU tensor (written into ``out`` when given).

    ``out`` is a preallocated 1-D float32 buffer of the total size, e.g. a row of an (n, d) matrix.
    """
    total = sum(a.size for a in arrays)
    if out is None:
        out = np.empty(total, dtype=np.float32)
    elif out.shape != (total,):
        raise ValueError(f"out must have shape ({total},), got {out.shape}")
    np.concatenate([np.asarray(a).reshape(-1) for a in arrays], out=out, casting="same_kind")
    return torch.from_numpy(out)


def payload_bytes(arrays: Sequence[np.ndarray]) -> int:
    """Bytes of the arrays' data (``nbytes``), the payload a message carries."""
    return int(sum(a.nbytes for a in arrays))
