"""The benchmark protocol on a sweep's records: worst case over attacks, tuned values chosen on validation.

Robust rules are compared by their **worst case** over a set of attacks, per Byzantine fraction ψ
and degree of heterogeneity, with each rule's hyperparameters tuned fairly (the protocol of
Allouah et al.'s ByzFL benchmark: the best value per rule under the worst attack). Here:

- A **setting** is (context, strategy, heterogeneity, ψ). The heterogeneity is the partitioner,
  with its α for ``dirichlet`` (:func:`heterogeneity`); the context is every other run key that
  varies across the records and is neither compared (:data:`COMPARED_KEYS`) nor tuned.
- A run's score is its final-round value of a metric; a non-finite value scores 0 (a run that blew
  up is the worst case, not a missing one). A (setting, attack) scores the mean over its seeds.
- The **worst case** of a setting is the attack with the lowest score (:func:`worst_case`); an
  attack recorded at ψ = 0 is the clean run.
- **Tuning** (:func:`choose_tuned`): per setting, the tuned axes' values (one candidate per
  combination that occurs) that maximise the worst case over attacks of the final
  ``val_accuracy`` (the run's validation split, carved out of the training data; the test split
  is never read). Ties go to the candidate that comes first in grid order. A candidate that lacks
  an attack another candidate of its setting has is not eligible (an unfinished sweep must not
  make a candidate look better by missing its worst attack). The report then shows **test**
  accuracy at the chosen values.

Examples
--------
>>> def rec(lr, attack, val, test, seed=0):
...     return {"config": {"strategy": "gmd", "attack": attack, "byzantine-fraction": 0.2, "lr": lr,
...                        "seed": seed},
...             "results": {"rounds": [{"round": 1, "val_accuracy": val, "accuracy": test}]}}
>>> records = [rec(0.1, "alie", 0.80, 0.70), rec(0.1, "ipm", 0.60, 0.99),
...            rec(0.3, "alie", 0.70, 0.10), rec(0.3, "ipm", 0.65, 0.10)]
>>> (choice,) = choose_tuned(records, {"lr": [0.1, 0.3]}).values()
>>> choice.values, choice.score  # lr = 0.3: its worst attack (ipm, 0.65) beats lr = 0.1's (0.60)
({'lr': 0.3}, 0.65)
>>> worst_case(choice.records).attack, worst_case(choice.records).mean  # test accuracy at lr = 0.3
('alie', 0.1)
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..config import placement_keys

__all__ = [
    "COMPARED_KEYS",
    "Choice",
    "Worst",
    "attack_label",
    "choose_tuned",
    "context_keys",
    "final_score",
    "heterogeneity",
    "heterogeneity_order",
    "setting_of",
    "worst_case",
]

#: Run keys a report compares or averages over: never a context, never tuned.
COMPARED_KEYS = ("strategy", "attack", "attack-params", "byzantine-fraction", "seed", "partitioner", "dirichlet-alpha")


def heterogeneity(config: Mapping[str, Any]) -> str:
    """How the training data is split: the partitioner, with its α for ``dirichlet``.

    Examples
    --------
    >>> heterogeneity({"partitioner": "dirichlet", "dirichlet-alpha": 0.1}), heterogeneity({})
    ('dirichlet α=0.1', 'iid')
    """
    name = str(config.get("partitioner", "iid"))
    return f"dirichlet α={float(config.get('dirichlet-alpha', 0.5)):g}" if name == "dirichlet" else name


def heterogeneity_order(label: str) -> tuple[int, float, str]:
    """Sort key: iid first, then dirichlet from the largest α (mildest) down, then the others by name."""
    if label == "iid":
        return (0, 0.0, label)
    if label.startswith("dirichlet α="):
        return (1, -float(label.split("=", 1)[1]), label)
    return (2, 0.0, label)


def attack_label(config: Mapping[str, Any]) -> str:
    """The attack with its parameters, e.g. ``'alie'`` or ``'gaussian (sigma=200)'``."""
    attack, params = str(config.get("attack", "none")), str(config.get("attack-params", ""))
    return f"{attack} ({params})" if params else attack


def final_score(record: Mapping[str, Any], field: str = "accuracy") -> float:
    """The final round's ``field`` of a sweep record; 0.0 when it is missing or not finite."""
    rounds = record["results"]["rounds"]
    value = rounds[-1].get(field) if rounds else None
    value = math.nan if value is None else float(value)
    return value if math.isfinite(value) else 0.0


def context_keys(records: Sequence[Mapping[str, Any]], tuned: Iterable[str] = ()) -> list[str]:
    """Run keys that vary across ``records`` and are neither compared, tuned nor placement keys."""
    skip = set(COMPARED_KEYS) | set(tuned) | set(placement_keys()) | {"output"}
    keys = sorted({k for r in records for k in r["config"]} - skip)
    return [k for k in keys if len({repr(r["config"].get(k)) for r in records}) > 1]


def setting_of(record: Mapping[str, Any], context: Sequence[str]) -> tuple[tuple[tuple[str, Any], ...], str, str, float]:
    """``(context pairs, strategy, heterogeneity, ψ)`` of a record."""
    cfg = record["config"]
    return (tuple((k, cfg.get(k)) for k in context), str(cfg["strategy"]), heterogeneity(cfg),
            float(cfg.get("byzantine-fraction", 0.0)))


@dataclasses.dataclass(frozen=True)
class Worst:
    """The worst attack of a setting.

    Attributes
    ----------
    attack : str
        Its :func:`attack_label`.
    mean, std : float
        Mean and sample standard deviation (0 for one seed) over its seeds of the final metric (a fraction).
    seeds : int
        Runs averaged.
    """

    attack: str
    mean: float
    std: float
    seeds: int


def _by_attack(records: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in records:
        out[attack_label(r["config"])].append(r)
    return dict(out)


def worst_case(records: Sequence[Mapping[str, Any]], field: str = "accuracy") -> Worst:
    """The attack whose mean over seeds of the final ``field`` (:func:`final_score`) is lowest;
    ties go to the attack recorded first.

    Raises
    ------
    ValueError
        ``records`` is empty.
    """
    if not records:
        raise ValueError("worst_case needs at least one record")
    best: Worst | None = None
    for attack, runs in _by_attack(records).items():
        scores = np.array([final_score(r, field) for r in runs])
        std = float(scores.std(ddof=1)) if len(scores) > 1 else 0.0
        item = Worst(attack, float(scores.mean()), std, len(scores))
        if best is None or item.mean < best.mean:
            best = item
    assert best is not None
    return best


@dataclasses.dataclass(frozen=True)
class Choice:
    """The tuned values chosen for one setting.

    Attributes
    ----------
    values : dict
        Tuned run key → chosen value.
    score : float
        The worst case over attacks of the final validation accuracy at those values.
    worst_attack : str
        The attack that achieved it.
    candidates : int
        Eligible candidates compared.
    records : list
        The setting's records at the chosen values (every attack and seed).
    """

    values: dict[str, Any]
    score: float
    worst_attack: str
    candidates: int
    records: list[Mapping[str, Any]]


def _grid_rank(values: Mapping[str, Any], tuned: Mapping[str, Sequence[Any]]) -> tuple[int, ...]:
    ranks = []
    for key, order in tuned.items():
        value = values.get(key)
        ranks.append(next((i for i, v in enumerate(order) if v == value), len(order)))
    return tuple(ranks)


def choose_tuned(
    records: Sequence[Mapping[str, Any]], tuned: Mapping[str, Sequence[Any]], field: str = "val_accuracy"
) -> dict[tuple[Any, ...], Choice]:
    """Per setting (:func:`setting_of`), the tuned values maximising the worst case over attacks
    of the final ``field`` (the module docstring's rule).

    Parameters
    ----------
    records : sequence of dict
        Sweep records (``read_sweep``).
    tuned : mapping
        Tuned run key → candidate values in grid order (ties go to the earliest); empty: one
        candidate per setting, every record.
    field : str
        The per-round metric chosen on: ``val_accuracy``, never the test ``accuracy``.

    Returns
    -------
    dict
        Setting → :class:`Choice`.

    Raises
    ------
    ValueError
        ``tuned`` is not empty and a record has no final ``field`` (the sweep did not hold out a
        validation split: set ``validation-size``).
    """
    tuned = {k: list(v) for k, v in tuned.items()}
    if tuned:
        missing = [r for r in records if r["results"]["rounds"] and r["results"]["rounds"][-1].get(field) is None]
        if missing:
            cfg = missing[0]["config"]
            raise ValueError(
                f"{len(missing)} record(s) have no final {field} (e.g. {cfg.get('strategy')}, {attack_label(cfg)}, "
                f"psi={cfg.get('byzantine-fraction')}): tuned values are chosen on the validation split, so the "
                "sweep needs validation-size > 0"
            )
    context = context_keys(records, tuned)
    settings: dict[tuple[Any, ...], dict[tuple[Any, ...], list[Mapping[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        candidate = tuple(r["config"].get(k) for k in tuned)
        settings[setting_of(r, context)][candidate].append(r)
    out: dict[tuple[Any, ...], Choice] = {}
    for setting, candidates in settings.items():
        attacks = set().union(*(set(_by_attack(runs)) for runs in candidates.values()))
        ranked = []
        for candidate, runs in candidates.items():
            if set(_by_attack(runs)) != attacks:
                continue  # missing an attack: not comparable
            values = dict(zip(tuned, candidate))
            worst = worst_case(runs, field) if tuned else worst_case(runs, "accuracy")
            ranked.append((-worst.mean, _grid_rank(values, tuned), values, worst, runs))
        if not ranked:
            continue
        ranked.sort(key=lambda item: item[:2])
        _, _, values, worst, runs = ranked[0]
        out[setting] = Choice(values, worst.mean, worst.attack, len(ranked), list(runs))
    return out
