"""Acceptance sweep of the geometric-median family (issue #5): final accuracy under attack.

Runs ``mnist5k`` with 10 clients (all sampled every round) for every strategy variant, attack and
Byzantine fraction ψ, plus a non-IID ``label-shards`` setting, and prints one table of final test
accuracies (the mean of the last 3 rounds) and each strategy's drop from its clean run. Every
finished run is appended to a JSON-lines file, so an interrupted sweep resumes where it stopped.

Usage::

    python scripts/acceptance_gm_family.py --rounds 60 --out results/acceptance.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

VARIANTS = {
    "bgmd": {"strategy": "bgmd"},
    "bgmd-top-k": {"strategy": "bgmd", "selection": "top-k"},
    "gmd": {"strategy": "gmd"},
    "cmd": {"strategy": "cmd"},
    "mean-sgd": {"strategy": "mean-sgd"},
}
BIT_FLIP_ONLY = ("bgmd-top-k",)  # the selection rule is compared where attackers dominate column norms
SETTINGS = [("iid", "none", 0.0)] + [
    ("iid", attack, psi) for attack in ("bit-flip", "gaussian") for psi in (0.2, 0.4)
] + [("label-shards", "none", 0.0), ("label-shards", "bit-flip", 0.2)]


def _key(variant: str, partitioner: str, attack: str, psi: float) -> str:
    return f"{variant}|{partitioner}|{attack}|{psi}"


def _final(rounds: list[dict], last: int = 3) -> float:
    return sum(r["accuracy"] for r in rounds[-last:]) / min(last, len(rounds))


def run(args: argparse.Namespace) -> dict[str, float]:
    import fedrobust

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if out.exists():
        for line in out.read_text().splitlines():
            row = json.loads(line)
            done[row["key"]] = row["final_accuracy"]
    for partitioner, attack, psi in SETTINGS:
        for variant in args.variants:
            key = _key(variant, partitioner, attack, psi)
            if key in done or (variant in BIT_FLIP_ONLY and attack != "bit-flip"):
                continue
            started = time.perf_counter()
            res = fedrobust.simulate(
                **VARIANTS[variant], dataset="mnist5k", model=args.model, num_clients=10, clients_per_round=10,
                rounds=args.rounds, lr=args.lr, batch_size=32, rho=args.rho, partitioner=partitioner, attack=attack,
                byzantine_fraction=psi, seed=args.seed,
            )
            done[key] = _final(res["rounds"])
            row = {"key": key, "final_accuracy": done[key], "seconds": time.perf_counter() - started,
                   "accuracy": [r["accuracy"] for r in res["rounds"]]}
            with out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(f"{key}: {done[key]:.3f} ({row['seconds']:.0f} s)", flush=True)
    return done


def table(done: dict[str, float], variants: list[str]) -> str:
    """Final accuracy per setting and variant; in brackets the drop from the variant's clean run."""
    lines = ["| setting | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
    for partitioner, attack, psi in SETTINGS:
        cells = []
        for v in variants:
            acc = done.get(_key(v, partitioner, attack, psi))
            clean = done.get(_key(v, partitioner, "none", 0.0))
            if acc is None:
                cells.append("-")
            elif attack == "none" or clean is None:
                cells.append(f"{acc:.3f}")
            else:
                cells.append(f"{acc:.3f} ({100 * (acc - clean):+.1f})")
        lines.append(f"| {partitioner} {attack} ψ={psi} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--rho", type=float, default=0.1)
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", default="results/acceptance_gm_family.jsonl")
    args = parser.parse_args()
    done = run(args)
    print(table(done, args.variants))


if __name__ == "__main__":
    main()
