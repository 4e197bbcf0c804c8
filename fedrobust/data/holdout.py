"""Seeded held-out subsets of a training split: examples kept out of every client's partition.

A run that needs data of its own on the server (FLTrust's root set; a validation split) takes
``size`` examples of the training split, drawn uniformly without replacement from a named random
stream of :mod:`fedrobust.core.rng` and the run seed, before the rest is partitioned among the
clients. The server and every client call the same function with the same arguments, so they
agree on the held-out indices without talking, no client's partition contains them, and the test
split is never touched. Two holdouts with different stream names draw apart.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..core.checks import check_int, check_seed
from ..core.rng import stream_rng

__all__ = ["Holdout", "MAX_HOLDOUT_FRACTION", "holdout_split"]

MAX_HOLDOUT_FRACTION = 0.5
"""A holdout may take at most this fraction of the training split (the clients keep the rest)."""


class Holdout(NamedTuple):
    """The training split's indices, held out or left to the clients; both sorted ``int64``."""

    held_out: np.ndarray
    rest: np.ndarray


def holdout_split(num_train: int, size: int, seed: int, stream: str, *, name: str = "holdout") -> Holdout:
    """``size`` seeded indices of ``range(num_train)`` held out, and the others.

    Parameters
    ----------
    num_train : int
        Examples in the training split.
    size : int
        Examples held out, ``1 <= size <= MAX_HOLDOUT_FRACTION · num_train``.
    seed : int
        The run seed.
    stream : str
        The random stream of :data:`fedrobust.core.rng.STREAMS` the draw comes from (e.g.
        ``"root-set"``): different holdouts of one run draw apart.
    name : str
        What the holdout is called in error messages (e.g. the run key ``root-size``).

    Raises
    ------
    ValueError
        If ``size`` is below 1 or above the allowed fraction of the training split.

    Examples
    --------
    >>> out = holdout_split(10, 3, seed=0, stream="root-set")
    >>> out.held_out.tolist() == holdout_split(10, 3, seed=0, stream="root-set").held_out.tolist()
    True
    >>> sorted(out.held_out.tolist() + out.rest.tolist()) == list(range(10)), len(out.held_out)
    (True, 3)
    >>> holdout_split(10, 6, seed=0, stream="root-set", name="root-size")
    Traceback (most recent call last):
    ...
    ValueError: root-size=6 is more than 0.5 of the 10 training examples; the clients need the rest
    """
    num_train = check_int(num_train, "num_train", low=1)
    size = check_int(size, name, low=1)
    seed = check_seed(seed)
    if size > MAX_HOLDOUT_FRACTION * num_train:
        raise ValueError(
            f"{name}={size} is more than {MAX_HOLDOUT_FRACTION:g} of the {num_train} training examples; "
            "the clients need the rest"
        )
    held = np.sort(stream_rng(stream, seed).choice(num_train, size=size, replace=False)).astype(np.int64)
    mask = np.ones(num_train, dtype=bool)
    mask[held] = False
    return Holdout(held, np.flatnonzero(mask).astype(np.int64))
