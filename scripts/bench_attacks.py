"""Robust strategies against the field's strong attacks: final accuracy and the worst case over attacks.

Strategies {fedavg, cmd, trimmed-mean, krum, gmd, bgmd, norm-threshold, c-rsa, signsgd-mv} ×
attacks {none, bit-flip, gaussian, alie, ipm ε = 0.1, ipm ε = 100, min-max, min-sum, fang, mimic}
on mnist5k / mlp, 10 clients (all sampled each round), ψ = 0.2 (2 of 10 Byzantine, the same two
every round), IID and ``dirichlet`` α = 0.5. The omniscient attacks (alie, ipm, min-max, min-sum,
fang, mimic) see the round's honest replies and write theirs in the strategy's wire format
(:mod:`fedrobust.strategies.adversary`); bit-flip (−100·g) and gaussian (g + N(0, 100)) are the
client-local attacks of the BGMD paper. Every attack runs with its documented defaults
(``docs/attacks.md``); nothing is tuned to the rules.

Settings per strategy are the ones fedrobust's demo and reproduction scripts use, the same under
every attack: lr 0.3, batch 64 (fedavg: 5 local steps; bgmd: rho 0.1; trimmed-mean and
norm-threshold: beta 0.2; krum: f from ψ); c-rsa: lr 0.1, lam 0.002, batch 32, coord-ratio 0.5 (as
``scripts/compare_strategies_ii.py``); signsgd-mv: lr 0.001. The accuracy of a run is the mean
test accuracy of its last 3 rounds; the worst case is the minimum over the attacks (``none``
excluded), and names the attack.

Each finished run is appended to ``OUTPUT/results.jsonl`` (a fedrobust sweep folder): a rerun
resumes, and ``fedrobust report OUTPUT`` plots the runs. Run:
``.venv/bin/python scripts/bench_attacks.py`` (in process; about 2 hours for 180 runs of 30 rounds
on 2 CPU cores; ``--rounds``, ``--strategies``, ``--attacks`` and ``--partitions`` pick less).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fedrobust.config import RunConfig
from fedrobust.experiments.sweep import ENGINES, read_sweep, run_sweep

STRATEGIES = ["fedavg", "cmd", "trimmed-mean", "krum", "gmd", "bgmd", "norm-threshold", "c-rsa", "signsgd-mv"]
#: column label -> (attack, attack-params)
ATTACKS = {
    "none": ("none", ""),
    "bit-flip": ("bit-flip", ""),
    "gaussian": ("gaussian", ""),
    "alie": ("alie", ""),
    "ipm 0.1": ("ipm", "epsilon=0.1"),
    "ipm 100": ("ipm", "epsilon=100"),
    "min-max": ("min-max", ""),
    "min-sum": ("min-sum", ""),
    "fang": ("fang", ""),
    "mimic": ("mimic", ""),
}
PARTITIONS = {"iid": {"partitioner": "iid"}, "dirichlet 0.5": {"partitioner": "dirichlet", "dirichlet_alpha": 0.5}}
BASE = dict(dataset="mnist5k", model="mlp", num_clients=10, clients_per_round=10, lr=0.3, batch_size=64,
            local_steps=5, rho=0.1, beta=0.2, seed=0, device="cpu")
PER_STRATEGY: dict[str, dict[str, Any]] = {
    "c-rsa": dict(lr=0.1, lam=0.002, batch_size=32, coord_ratio=0.5),
    "signsgd-mv": dict(lr=0.001),
}


def cell(strategy: str, label: str, partition: str, rounds: int) -> RunConfig:
    """The run of one table entry."""
    attack, params = ATTACKS[label]
    keys = {**BASE, **PER_STRATEGY.get(strategy, {}), **PARTITIONS[partition]}
    psi = 0.0 if attack == "none" else 0.2
    return RunConfig(strategy=strategy, attack=attack, attack_params=params, byzantine_fraction=psi, rounds=rounds,
                     **keys)


def final_accuracy(results: dict[str, Any]) -> float:
    """Mean test accuracy of the last 3 rounds."""
    last = [r["accuracy"] for r in results["rounds"][-3:]]
    return sum(last) / len(last)


def table(records: list[dict[str, Any]], strategies: list[str], labels: list[str], partition: str, rounds: int) -> str:
    """The markdown table of one partition: a row per strategy, a column per attack, the worst case."""
    by_id = {r["cell"]: r for r in records}
    from fedrobust.experiments.sweep import cell_id

    head = "| strategy | " + " | ".join(labels) + " | worst case |"
    lines = [head, "|---|" + "---:|" * (len(labels) + 1)]
    for s in strategies:
        accs = {}
        for label in labels:
            record = by_id.get(cell_id(cell(s, label, partition, rounds)))
            accs[label] = None if record is None else 100 * final_accuracy(record["results"])
        attacked = {k: v for k, v in accs.items() if k != "none" and v is not None}
        worst = min(attacked, key=attacked.get) if attacked else None
        cells = ["–" if v is None else f"{v:.1f}" for v in accs.values()]
        lines.append(f"| {s} | " + " | ".join(cells) + (f" | {attacked[worst]:.1f} ({worst}) |" if worst else " | – |"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="results/bench-attacks", help="the sweep folder (resumes)")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--attacks", default=",".join(ATTACKS), help="column labels, comma-separated")
    parser.add_argument("--partitions", default=",".join(PARTITIONS))
    parser.add_argument("--engine", choices=sorted(ENGINES), default="inprocess")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    strategies = args.strategies.split(",")
    labels = args.attacks.split(",")
    partitions = args.partitions.split(",")
    cells = [cell(s, a, p, args.rounds) for p in partitions for s in strategies for a in labels]
    summary = run_sweep(cells, Path(args.output), run_cell=ENGINES[args.engine], progress=not args.quiet)
    records = read_sweep(Path(args.output))
    print(f"mnist5k / mlp, 10 clients, psi = 0.2, {args.rounds} rounds; final accuracy (%, mean of the last 3 "
          "rounds); worst case over the attacks (none excluded)")
    for p in partitions:
        print(f"\n### {p}\n")
        print(table(records, strategies, labels, p, args.rounds))
    if summary.failed:
        raise SystemExit(f"{len(summary.failed)} run(s) failed: {summary.failed}")


if __name__ == "__main__":
    main()
