"""Step-size schedules over the rounds of a run (the ``lr-schedule`` run key)."""

from __future__ import annotations

import math

from ..core.checks import check_int, check_positive

__all__ = ["LR_SCHEDULES", "scheduled_lr"]

LR_SCHEDULES = ("constant", "cosine")
"""The ``lr-schedule`` choices."""


def scheduled_lr(lr: float, schedule: str, server_round: int, rounds: int) -> float:
    """The step size of round ``server_round`` (1-based) of ``rounds``.

    ``constant``: ``lr`` in every round. ``cosine``: cosine annealing without restarts,
    ``lr · (1 + cos(π (t − 1) / rounds)) / 2``: ``lr`` in round 1, decreasing to
    ``lr · (1 + cos(π (rounds − 1) / rounds)) / 2 > 0`` in the last round.
    Acharya, Hashemi, Jain, Sanghavi, Dhillon and Topcu (2022), "Robust Training in High Dimensions via
    Block Coordinate Geometric Median Descent", anneal their CIFAR-10 runs with cosine warm restarts.

    Examples
    --------
    >>> scheduled_lr(0.1, "constant", 7, 10)
    0.1
    >>> [round(scheduled_lr(1.0, "cosine", t, 4), 3) for t in (1, 2, 3, 4)]
    [1.0, 0.854, 0.5, 0.146]
    >>> scheduled_lr(1.0, "cosine", 0, 4)  # round 0 (before training) counts as round 1
    1.0
    """
    lr = check_positive(lr, "lr")
    rounds = check_int(rounds, "rounds", low=1)
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        t = min(max(int(server_round), 1), rounds)
        return lr * (1.0 + math.cos(math.pi * (t - 1) / rounds)) / 2.0
    raise ValueError(f"lr-schedule must be one of {', '.join(LR_SCHEDULES)}, got {schedule!r}")
