"""Who is Byzantine: a ψ fraction of the clients, a fixed set or one redrawn every round.

Client ids here are the data partition ids ``0 .. num_clients − 1`` (not Flower node ids).
The number of Byzantine clients is ``floor(ψ · num_clients)`` (:func:`num_byzantine`), so
ψ = 0.25 of 10 clients gives 2; ψ must lie in [0, 1).

- ``fixed``: one seeded set for the whole run; it depends on ``seed`` only.
- ``dynamic``: a fresh set every round (the "dynamic corruption" of Acharya, Hashemi, Jain, Sanghavi, Dhillon
  and Topcu (2022), "Robust Training in High Dimensions via Block Coordinate Geometric Median Descent"); it
  depends on ``(seed, server_round)`` only, so a run is reproducible and every client can work out on its own
  whether it is Byzantine this round.

The draws use their own random stream (seeded by ``seed`` and a fixed tag), independent of the
client sampling that uses ``(seed, server_round)``.
"""

from __future__ import annotations

from ..core.checks import check_fraction, check_int, check_seed
from ..core.rng import stream_rng
from ._checks import count_of

__all__ = ["BYZANTINE_MODES", "byzantine_ids", "num_byzantine"]

BYZANTINE_MODES = ("fixed", "dynamic")
"""How the Byzantine set evolves: ``fixed`` for the whole run or ``dynamic`` (redrawn each round)."""


def num_byzantine(num_clients: int, fraction: float) -> int:
    """floor(ψ · num_clients), the number of Byzantine clients (ψ ∈ [0, 1)).

    Examples
    --------
    >>> num_byzantine(10, 0.25), num_byzantine(10, 0.3), num_byzantine(20, 0.15), num_byzantine(3, 0.0)
    (2, 3, 3, 0)
    """
    num_clients = check_int(num_clients, "num_clients", low=1)
    fraction = check_fraction(fraction, "fraction", upper=1.0)
    return count_of(fraction, num_clients)


def byzantine_ids(
    num_clients: int,
    fraction: float,
    mode: str = "fixed",
    seed: int = 0,
    server_round: int | None = None,
) -> frozenset[int]:
    """The partition ids of the Byzantine clients (in round ``server_round`` for ``dynamic``).

    Parameters
    ----------
    num_clients : int
        Number of clients N >= 1; ids are ``0 .. N − 1``.
    fraction : float
        ψ in [0, 1); the set has ``floor(ψ · N)`` ids.
    mode : str
        ``"fixed"`` (default) or ``"dynamic"``.
    seed : int
        The run's seed (>= 0).
    server_round : int, optional
        The round (>= 0); required for ``dynamic``, ignored for ``fixed``.

    Returns
    -------
    frozenset[int]

    Examples
    --------
    >>> fixed = byzantine_ids(10, 0.3, "fixed", seed=1)
    >>> len(fixed), fixed == byzantine_ids(10, 0.3, "fixed", seed=1, server_round=7)
    (3, True)
    >>> round_2 = byzantine_ids(10, 0.3, "dynamic", seed=1, server_round=2)
    >>> round_2 == byzantine_ids(10, 0.3, "dynamic", seed=1, server_round=2), len(round_2)
    (True, 3)
    >>> byzantine_ids(10, 0.0)
    frozenset()
    """
    k = num_byzantine(num_clients, fraction)
    if mode not in BYZANTINE_MODES:
        raise ValueError(f"mode must be one of {', '.join(BYZANTINE_MODES)}, got {mode!r}")
    seed = check_seed(seed)
    if mode == "dynamic":
        if server_round is None:
            raise ValueError("server_round is required when mode='dynamic'")
        server_round = check_int(server_round, "server_round", low=0)
        rng = stream_rng("byzantine-dynamic", seed, server_round)
    else:
        if server_round is not None:
            check_int(server_round, "server_round", low=0)
        rng = stream_rng("byzantine-fixed", seed)
    if k == 0:
        return frozenset()
    return frozenset(int(i) for i in rng.choice(num_clients, size=k, replace=False))
