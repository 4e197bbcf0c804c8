"""Round records without their clocks: what two runs of the same config must agree on."""

from __future__ import annotations

from collections.abc import Iterable


def untimed(rounds: Iterable[dict]) -> list[dict]:
    """``rounds`` (a results document's ``"rounds"``) without the keys that name seconds.

    Examples
    --------
    >>> untimed([{"round": 1, "accuracy": 0.5, "round_seconds": 0.1, "server_seconds": 0.01}])
    [{'round': 1, 'accuracy': 0.5}]
    """
    return [{k: v for k, v in r.items() if "seconds" not in k} for r in rounds]
