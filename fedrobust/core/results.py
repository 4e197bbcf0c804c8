"""Results of a run: one record per server round, and the JSON file that holds them.

The schema (the same for ``fedrobust.simulate(...)``, ``fedrobust run --output`` and ``flwr run``)::

    {"fedrobust-version": "...", "config": {<run-config key>: value, ...},
     "attack": {"name": "bit-flip", "kind": "update", "params": {"scale": 100.0},
                "byzantine_clients": [2, 7]},          # the whole fixed set; null when dynamic
     "warnings": ["..."],                                # doubtful settings (fedrobust.config.config_warnings)
     "startup_seconds": 21.3,                            # before round 1 (Ray's start-up), not in any round
     "initial": {"accuracy": ..., "loss": ...},          # the model before round 1
     "rounds": [{"round": 1, "accuracy": ..., "loss": ..., "bytes_up": ...,
                 "byzantine_clients": [7], ...}, ...]}  # Byzantine among the round's sampled clients

Under the ``backdoor`` attack every round also has ``attack_success_rate``. With
``validation-size > 0`` every round, and ``initial``, also has ``val_accuracy`` and ``val_loss``:
the same model evaluated on the run's validation split, held out of the training split before it
is partitioned (:func:`fedrobust.run.build.validation_indices`; never the test split). A run stopped by
Ctrl-C writes the rounds it finished with ``"interrupted": true`` and ``"rounds_done": N`` at the
top level (:func:`fedrobust.run.interrupt.partial_results`).

Examples
--------
>>> r = RoundRecord(round=1, accuracy=0.5, loss=1.2, bytes_up=80, bytes_down=160, num_clients=2)
>>> r.to_dict()["bytes_up"], r.to_dict()["rejected_clients"]
(80, 0)
>>> RoundRecord(round=2, extra={"gm_iterations": 7}).to_dict()["gm_iterations"]
7
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["RoundRecord", "results_dict", "write_results", "read_results"]


@dataclass
class RoundRecord:
    """What happened in one server round.

    Attributes
    ----------
    round : int
        Server round, from 1.
    accuracy, loss : float or None
        Centralised evaluation of the global model on the test split after the round.
    bytes_up : int
        Sum of the payload bytes (ndarray ``nbytes``) of every reply received this round.
    bytes_down : int
        Bytes of the parameters sent, times the number of clients they were sent to.
    aggregation_seconds : float
        Wall time of the aggregation function plus the model step on the server.
    round_seconds : float
        Wall time of the whole round (sampling, client work, aggregation, evaluation), from the
        moment its clients are known: round 1's excludes the start-up (the results'
        ``startup_seconds``).
    num_clients : int
        Clients sampled this round.
    rejected_clients : int
        Replies dropped by validation (wrong arrays, shapes, dtype, non-finite values).
    failed_clients : int
        Clients that raised or timed out instead of replying.
    extra : dict
        Further metrics, flattened into the record by :meth:`to_dict`: ``byzantine_clients`` (the
        Byzantine partition ids among the sampled clients), ``attack_success_rate`` (under the
        ``backdoor`` attack), ``val_accuracy`` and ``val_loss`` (with ``validation-size > 0``: the
        global model on the validation split, after the round) and the strategy's own.
    """

    round: int
    accuracy: float | None = None
    loss: float | None = None
    bytes_up: int = 0
    bytes_down: int = 0
    aggregation_seconds: float = 0.0
    round_seconds: float = 0.0
    num_clients: int = 0
    rejected_clients: int = 0
    failed_clients: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The record as a flat JSON-ready dict (``extra`` merged in)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        out.update(self.extra)
        return out


def results_dict(
    config: Mapping[str, Any],
    rounds: Sequence[RoundRecord],
    initial: Mapping[str, Any] | None = None,
    *,
    startup_seconds: float | None = None,
    warnings: Sequence[str] = (),
    attack: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the results document (see the module docstring).

    ``config`` maps run-config keys to values; when it has an ``attack`` key the ``attack`` and
    ``warnings`` sections are filled with what the caller computed: ``attack``, the run's
    :func:`~fedrobust.attacks.attack_summary`, and ``warnings``, its
    :func:`~fedrobust.config.config_warnings`. ``startup_seconds``: the
    seconds before round 1 started (None: not measured, or round 1 has not started).
    """
    from .._version import __version__

    out: dict[str, Any] = {"fedrobust-version": __version__, "config": dict(config)}
    if "attack" in config:
        out["attack"] = dict(attack or {})
        out["warnings"] = list(warnings)
    out["startup_seconds"] = startup_seconds
    out["initial"] = dict(initial or {})
    out["rounds"] = [r.to_dict() for r in rounds]
    return out


def write_results(path: str | Path, results: Mapping[str, Any]) -> Path:
    """Write ``results`` as indented JSON (creating parent folders) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return path


def read_results(path: str | Path) -> dict[str, Any]:
    """Read a results JSON file written by :func:`write_results`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
