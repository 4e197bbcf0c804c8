"""Torch's intra-op thread count, put back after a block that may change it.

fedrobust's clients apply ``client-threads`` (``torch.set_num_threads``) when they are built,
right in a Ray actor, a process of its own. The in-process engine runs a whole run at that count
(:func:`fedrobust.run.inprocess.run_inprocess`) and gives the caller's count back after it;
numba's thread pool, whose start sets OpenMP's count (torch's too) to every core, is started
inside :func:`kept_torch_threads` as well.

Examples
--------
>>> import torch
>>> before = torch.get_num_threads()
>>> with kept_torch_threads():
...     torch.set_num_threads(1)
>>> torch.get_num_threads() == before
True
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["kept_torch_threads"]


@contextlib.contextmanager
def kept_torch_threads() -> Iterator[None]:
    """Run the block, then set torch's intra-op thread count back to what it was before it."""
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
