"""A run's attack from its configuration: the attack object, the Byzantine ids, the summary.

The functions read the run keys ``attack``, ``attack-params``, ``byzantine-fraction``,
``byzantine-mode``, ``num-clients`` and ``seed`` as attributes of ``cfg`` (a
:class:`~fedrobust.config.RunConfig`); the attack library does not import the configuration.
"""

from __future__ import annotations

from typing import Any

from ..core.params import parse_params
from .base import Attack
from .registry import get_attack
from .selection import byzantine_ids

__all__ = ["attack_summary", "build_attack", "byzantine_clients"]


def build_attack(cfg: Any) -> Attack:
    """The run's attack: ``attack`` built with the parameters of ``attack-params``.

    Raises
    ------
    ValueError
        A parameter the attack does not take, or a value out of its range.

    Examples
    --------
    >>> from fedrobust.config import RunConfig
    >>> build_attack(RunConfig(attack="bit-flip", attack_params="scale=10"))
    BitFlip(scale=10.0)
    >>> build_attack(RunConfig()).kind
    'none'
    """
    return get_attack(cfg.attack, **parse_params(cfg.attack_params, "attack-params"))


def byzantine_clients(cfg: Any, server_round: int) -> frozenset[int]:
    """Partition ids that act Byzantine in ``server_round``: none when ``attack`` is ``none``.

    ``byzantine-mode = fixed`` gives the same seeded set every round; ``dynamic`` a fresh one per
    round (see :func:`fedrobust.attacks.byzantine_ids`).

    Examples
    --------
    >>> from fedrobust.config import RunConfig
    >>> cfg = RunConfig(attack="sign-flip", byzantine_fraction=0.2, num_clients=10)
    >>> len(byzantine_clients(cfg, 1)), byzantine_clients(cfg, 1) == byzantine_clients(cfg, 2)
    (2, True)
    >>> byzantine_clients(cfg.replace(attack="none"), 1)
    frozenset()
    """
    if cfg.attack == "none":
        return frozenset()
    return byzantine_ids(cfg.num_clients, cfg.byzantine_fraction, cfg.byzantine_mode, cfg.seed, server_round)


def attack_summary(cfg: Any) -> dict[str, Any]:
    """The run's attack for the results: name, kind, parameters (defaults included), Byzantine ids.

    ``byzantine_clients`` is the sorted set of Byzantine partition ids when ``byzantine-mode`` is
    ``fixed``, and None when ``dynamic`` (the rounds record each round's set).

    Examples
    --------
    >>> from fedrobust.config import RunConfig
    >>> attack_summary(RunConfig(attack="bit-flip", byzantine_fraction=0.2, num_clients=10))
    {'name': 'bit-flip', 'kind': 'update', 'params': {'scale': 100.0}, 'byzantine_clients': [6, 8]}
    >>> dynamic = RunConfig(attack="bit-flip", byzantine_fraction=0.2, byzantine_mode="dynamic")
    >>> attack_summary(dynamic)["byzantine_clients"] is None
    True
    >>> attack_summary(RunConfig())
    {'name': 'none', 'kind': 'none', 'params': {}, 'byzantine_clients': []}
    """
    attack = build_attack(cfg)
    ids = sorted(byzantine_clients(cfg, 0)) if cfg.byzantine_mode == "fixed" else None
    return {"name": attack.name, "kind": attack.kind, "params": attack.params, "byzantine_clients": ids}
