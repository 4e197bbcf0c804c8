"""Robust rules with and without pre-aggregation and worker momentum, where robust rules fail: non-IID data.

Rules {gmd, bgmd, cmd, trimmed-mean, krum, centered-clipping} × compositions {plain, worker momentum
0.9, momentum 0.9 + nnm} on mnist5k / mlp, 10 clients (all sampled each round), 60 rounds, in the
settings {IID clean, IID bit-flip ψ = 0.4, label-shards and dirichlet α = 0.3 each clean, bit-flip
ψ = 0.2 and alie ψ = 0.2}. Every setting keeps the defaults of the acceptance sweep
(``scripts/acceptance_gm_family.py``: lr 0.1, batch 32, rho 0.1, seed 0), the rules their documented
defaults (trimmed-mean: beta = max(0.2, ψ); krum and nnm: f from ψ; centered-clipping: τ = 10,
L = 1), the attacks theirs (``docs/attacks.md``); nothing is tuned to a rule or a setting.

The accuracy of a run is the mean test accuracy of its last 3 rounds; each attacked cell shows in
brackets its drop from the same composition's clean run of the same partition. The targets of the
defenses issue are checked at the end: the best composition within 5 points of its clean run in
label-shards bit-flip, and within 3 points in IID bit-flip ψ = 0.4.

Each finished run is appended to ``OUTPUT/results.jsonl`` (a fedrobust sweep folder): a rerun
resumes. Run: ``.venv/bin/python scripts/bench_defenses.py`` (in process; 144 runs, about 40
minutes on 2 CPU cores); ``--rounds``, ``--strategies``, ``--compositions`` and ``--settings`` pick less.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fedrobust.config import RunConfig
from fedrobust.experiments.sweep import ENGINES, cell_id, read_sweep, run_sweep

STRATEGIES = ["gmd", "bgmd", "cmd", "trimmed-mean", "krum", "centered-clipping"]
COMPOSITIONS: dict[str, dict[str, Any]] = {
    "plain": {},
    "momentum": {"client_momentum": 0.9},
    "momentum+nnm": {"client_momentum": 0.9, "pre_aggregation": "nnm"},
}
#: label -> (partition keys, attack, psi)
SETTINGS: dict[str, tuple[dict[str, Any], str, float]] = {
    "iid clean": ({"partitioner": "iid"}, "none", 0.0),
    "iid bit-flip 0.4": ({"partitioner": "iid"}, "bit-flip", 0.4),
    "shards clean": ({"partitioner": "label-shards"}, "none", 0.0),
    "shards bit-flip 0.2": ({"partitioner": "label-shards"}, "bit-flip", 0.2),
    "shards alie 0.2": ({"partitioner": "label-shards"}, "alie", 0.2),
    "dir0.3 clean": ({"partitioner": "dirichlet", "dirichlet_alpha": 0.3}, "none", 0.0),
    "dir0.3 bit-flip 0.2": ({"partitioner": "dirichlet", "dirichlet_alpha": 0.3}, "bit-flip", 0.2),
    "dir0.3 alie 0.2": ({"partitioner": "dirichlet", "dirichlet_alpha": 0.3}, "alie", 0.2),
}
BASE = dict(dataset="mnist5k", model="mlp", num_clients=10, clients_per_round=10, lr=0.1, batch_size=32, rho=0.1,
            seed=0, device="cpu")


def cell(strategy: str, composition: str, setting: str, rounds: int) -> RunConfig:
    """The run of one table entry."""
    partition, attack, psi = SETTINGS[setting]
    keys = {**BASE, **partition, **COMPOSITIONS[composition]}
    if strategy == "trimmed-mean":
        keys["beta"] = max(0.2, psi)
    return RunConfig(strategy=strategy, attack=attack, byzantine_fraction=psi, rounds=rounds, **keys)


def clean_of(setting: str) -> str:
    """The clean setting of the same partition."""
    return setting.split(" ")[0] + " clean"


def final_accuracy(results: dict[str, Any]) -> float:
    """Mean test accuracy of the last 3 rounds, in %."""
    last = [r["accuracy"] for r in results["rounds"][-3:]]
    return 100 * sum(last) / len(last)


def accuracies(records: list[dict[str, Any]], strategies, compositions, settings, rounds) -> dict[tuple, float]:
    by_id = {r["cell"]: r for r in records}
    out = {}
    for s in strategies:
        for c in compositions:
            for setting in settings:
                record = by_id.get(cell_id(cell(s, c, setting, rounds)))
                if record is not None:
                    out[s, c, setting] = final_accuracy(record["results"])
    return out


def table(acc: dict[tuple, float], strategies, compositions, settings) -> str:
    """Markdown: a row per rule and composition, a column per setting, drops in brackets."""
    lines = ["| rule | composition | " + " | ".join(settings) + " |", "|---|---|" + "---:|" * len(settings)]
    for s in strategies:
        for c in compositions:
            cells = []
            for setting in settings:
                value, clean = acc.get((s, c, setting)), acc.get((s, c, clean_of(setting)))
                if value is None:
                    cells.append("–")
                elif setting.endswith("clean") or clean is None:
                    cells.append(f"{value:.1f}")
                else:
                    cells.append(f"{value:.1f} ({value - clean:+.1f})")
            lines.append(f"| {s} | {c} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def target(acc: dict[tuple, float], setting: str, points: float) -> str:
    """Whether the best (rule, composition) of ``setting`` (the highest accuracy under the attack) is
    within ``points`` of its clean run, and which others are."""
    drops = {(s, c): acc[s, c, setting] - acc[s, c, clean_of(setting)]
             for (s, c, st) in acc if st == setting and (s, c, clean_of(setting)) in acc}
    if not drops:
        return f"target {setting}: not measured"
    s, c = max(drops, key=lambda key: acc[key[0], key[1], setting])
    verdict = "holds" if drops[s, c] >= -points else "does not hold"
    within = [f"{a} + {b}" for (a, b), drop in drops.items() if drop >= -points]
    return (f"target {setting} within {points:g} points of clean: {verdict}; best {s} + {c}: "
            f"{acc[s, c, setting]:.1f} ({drops[s, c]:+.1f} from its clean {acc[s, c, clean_of(setting)]:.1f}); "
            f"within {points:g} points: {', '.join(within) or 'none'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="results/bench-defenses", help="the sweep folder (resumes)")
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--compositions", default=",".join(COMPOSITIONS))
    parser.add_argument("--settings", default=",".join(SETTINGS), help="column labels, comma-separated")
    parser.add_argument("--engine", choices=sorted(ENGINES), default="inprocess")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    strategies, compositions = args.strategies.split(","), args.compositions.split(",")
    settings = args.settings.split(",")
    needed = list(dict.fromkeys(s2 for s in settings for s2 in (clean_of(s), s)))
    cells = [cell(s, c, st, args.rounds) for st in needed for s in strategies for c in compositions]
    summary = run_sweep(cells, Path(args.output), run_cell=ENGINES[args.engine], progress=not args.quiet)
    acc = accuracies(read_sweep(Path(args.output)), strategies, compositions, needed, args.rounds)
    print(f"mnist5k / mlp, 10 clients, {args.rounds} rounds; final accuracy (%, mean of the last 3 rounds), "
          "in brackets the drop from the clean run\n")
    print(table(acc, strategies, compositions, needed))
    print()
    for setting, points in (("shards bit-flip 0.2", 5.0), ("iid bit-flip 0.4", 3.0)):
        if setting in needed:
            print(target(acc, setting, points))
    if summary.failed:
        raise SystemExit(f"{len(summary.failed)} run(s) failed: {summary.failed}")


if __name__ == "__main__":
    main()
