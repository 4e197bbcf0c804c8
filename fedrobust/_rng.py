"""torch's global RNG, seeded for a block, one thread at a time.

:func:`seeded_global_rng` forks torch's global RNG (CPU, and the given CUDA devices), seeds it,
and restores it afterwards, holding :data:`GLOBAL_RNG_LOCK` throughout. The global RNG is one
per process: two threads seeding it at once would draw from each other's streams (breaking
determinism), and torch's generator mutex taken from two threads around the GIL can deadlock.
Model building (:func:`fedrobust.models.get_model`) and every client fit use it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence

import torch

__all__ = ["GLOBAL_RNG_LOCK", "seeded_global_rng"]

#: Held while a block runs on a seeded global RNG (re-entrant: a fit may build a model).
GLOBAL_RNG_LOCK = threading.RLock()


@contextlib.contextmanager
def seeded_global_rng(seed: int, devices: Sequence[int] = ()) -> Iterator[None]:
    """Run the block with torch's global RNG seeded with ``seed``, then restore it.

    Examples
    --------
    >>> with seeded_global_rng(3):
    ...     a = torch.rand(2)
    >>> with seeded_global_rng(3):
    ...     b = torch.rand(2)
    >>> torch.equal(a, b)
    True
    """
    with GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=list(devices)):
        torch.manual_seed(int(seed))
        yield
