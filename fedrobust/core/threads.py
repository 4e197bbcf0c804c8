"""Torch's intra-op thread count, put back after a block that may change it.

fedrobust's clients apply ``client-threads`` (``torch.set_num_threads``) when they are built. That
is right in a Ray actor, a process of its own that must not oversubscribe the cores it shares
with other actors. An in-process engine, though, builds its clients in the server's process, one
after the other, and the setting would outlive the client: the server's own work (evaluation,
aggregation) ran on one thread. The in-process engines call each client inside
:func:`kept_torch_threads`, so clients compute at ``client-threads`` as in an actor (the same
results as Flower's engine) and the server at the process's own count, as the Ray engine's
server does.

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
