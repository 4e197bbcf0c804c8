"""What one line of a sweep's ``results.jsonl`` must hold to count as a finished cell.

A record is ``{"cell": ID, "config": {...}, "num_classes": int or null, "results": {...}}`` (see
:mod:`fedrobust.experiments.sweep`); :func:`record_problem` says what is wrong with one that is not, naming
the field, so that a sweep runs such a cell again and a report names the file, line and field
instead of failing on it later.

Examples
--------
>>> good = {"cell": "ab", "config": {"strategy": "gmd"}, "num_classes": 10,
...         "results": {"rounds": [{"round": 1, "accuracy": 0.9, "loss": 0.3}]}}
>>> record_problem(good) is None
True
>>> record_problem({"cell": "ab", "config": {"strategy": "gmd"}})
"no 'results' (the run's results document)"
>>> record_problem({**good, "results": {"rounds": [{"round": 1, "accuracy": "high"}]}})
"results.rounds[0].accuracy is 'high', not a number or null"
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

__all__ = ["ROUND_NUMBERS", "record_problem"]

ROUND_NUMBERS = ("accuracy", "loss", "round_seconds", "bytes_up", "relative_residual")
"""The per-round fields a report reads as numbers; each must be a number or null where present."""


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def record_problem(record: Mapping[str, Any]) -> str | None:
    """Why ``record`` is not a finished cell (one line naming the field), or None when it is one.

    Checked: ``config`` is a table with a string ``strategy`` (and, where present, string
    ``attack`` / ``attack-params`` and a numeric ``byzantine-fraction``); ``num_classes`` is null or
    an integer >= 1; ``results`` is a table whose ``rounds`` is a non-empty list of tables, each
    with :data:`ROUND_NUMBERS` numbers or null where present.
    """
    config = record.get("config")
    if not isinstance(config, Mapping):
        return "no 'config' table (the cell's run keys)" if config is None else "'config' is not a table"
    if not isinstance(config.get("strategy"), str):
        return f"config.strategy is {config.get('strategy')!r}, not a strategy name"
    for key in ("attack", "attack-params"):
        if key in config and not isinstance(config[key], str):
            return f"config.{key} is {config[key]!r}, not a string"
    if "byzantine-fraction" in config and not _is_number(config["byzantine-fraction"]):
        return f"config.byzantine-fraction is {config['byzantine-fraction']!r}, not a number"
    classes = record.get("num_classes")
    if classes is not None and (not isinstance(classes, int) or isinstance(classes, bool) or classes < 1):
        return f"num_classes is {classes!r}, not null or an integer >= 1"
    results = record.get("results")
    if not isinstance(results, Mapping):
        return "no 'results' (the run's results document)" if results is None else "'results' is not a table"
    rounds = results.get("rounds")
    if not isinstance(rounds, list) or not rounds:
        return f"results.rounds is {rounds!r}, not a non-empty list of round records"
    for index, entry in enumerate(rounds):
        if not isinstance(entry, Mapping):
            return f"results.rounds[{index}] is {entry!r}, not a round record"
        for name in ROUND_NUMBERS:
            value = entry.get(name)
            if value is not None and not _is_number(value):
                return f"results.rounds[{index}].{name} is {value!r}, not a number or null"
    return None
