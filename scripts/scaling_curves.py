"""Scaling curves: seconds per round against the number of clients and against the model size.

Two sweeps on Flower's engine (Ray backend), each point one run of
``scripts/bench_simulation.py``'s instrumented simulation on mnist5k (device cpu, seed 0; round 1
is a warm-up and left out, the median of the other rounds is reported):

- **clients**: ``--clients`` clients (default 10, 100, 1000), all sampled every round, with the
  ``logistic`` model (7,850 parameters, so that the engine's per-client cost shows, not the
  model's), for ``mean-sgd`` and ``bgmd``;
- **model**: ``logistic`` (7,850 parameters), ``mlp`` (795,010), ``lenet`` (1,163,978) and
  ``resnet18`` (11,172,810 on 1 x 28 x 28 inputs), 10 clients per round, ``mean-sgd``.

It prints a markdown table per sweep (seconds per round and its parts, see bench_simulation.py)
and writes both curves into one PNG (log-log axes) and the numbers into a JSON file.

Run: ``.venv/bin/python scripts/scaling_curves.py --png docs/performance.png`` (``--quick``: a
10- and 20-client point and two small models, 2 rounds).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_simulation import PARTS, run_one, summarise  # noqa: E402

MODELS = ["logistic", "mlp", "lenet", "resnet18"]


def point(rounds: int, **keys: Any) -> dict[str, Any]:
    """Seconds per round (median over rounds 2..) of one run, its parts and the model size d."""
    from fedrobust.config import RunConfig

    cfg = RunConfig(dataset="mnist5k", device="cpu", rounds=rounds, **keys)
    started = time.perf_counter()
    results, rows = run_one(cfg, "ray")
    s = summarise(rows[1:])
    d = results["rounds"][0]["bytes_down"] // (4 * cfg.clients_per_round)
    print(f"  {keys}: {s['round']:.3f} s/round ({time.perf_counter() - started:.0f} s)", flush=True)
    return {**keys, "d": d, **s}


def table(rows: list[dict[str, Any]], first: str) -> str:
    head = f"| {first} | strategy | d | s/round | " + " | ".join(PARTS) + " |"
    lines = [head, "|---|---|---:|---:|" + "---:|" * len(PARTS)]
    for r in rows:
        lines.append(
            f"| {r[first.split()[0]]} | {r['strategy']} | {r['d']:,} | {r['round']:.3f} | "
            + " | ".join(f"{r[p]:.3f}" for p in PARTS) + " |"
        )
    return "\n".join(lines)


def plot(clients: list[dict[str, Any]], models: list[dict[str, Any]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6), dpi=100)
    for strategy in dict.fromkeys(r["strategy"] for r in clients):
        pts = [r for r in clients if r["strategy"] == strategy]
        a.plot([r["num_clients"] for r in pts], [r["round"] for r in pts], "o-", label=strategy)
    a.set(xscale="log", yscale="log", xlabel="clients per round (all sampled)", ylabel="seconds per round",
          title="logistic model, Ray engine")
    a.legend()
    b.plot([r["d"] for r in models], [r["round"] for r in models], "o-", color="C2")
    for r in models:
        b.annotate(r["model"], (r["d"], r["round"]), textcoords="offset points", xytext=(4, -10), fontsize=8)
    b.set(xscale="log", yscale="log", xlabel="model parameters d", ylabel="seconds per round",
          title="10 clients per round, mean-sgd")
    for ax in (a, b):
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--client-strategies", nargs="+", default=["mean-sgd", "bgmd"])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per run, the first a warm-up")
    parser.add_argument("--model-rounds", type=int, default=0, help="rounds of the model sweep (0: --rounds)")
    parser.add_argument("--png", default="docs/performance.png")
    parser.add_argument("--json", default="results/scaling_curves.json")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.client_strategies, args.models, args.rounds = [10, 20], ["mean-sgd"], ["logistic", "mlp"], 2
    load = os.getloadavg()
    clients = [
        point(args.rounds, strategy=s, model="logistic", num_clients=n, clients_per_round=n)
        for s in args.client_strategies for n in args.clients
    ]
    models = [
        point(args.model_rounds or args.rounds, strategy="mean-sgd", model=m, num_clients=10, clients_per_round=10)
        for m in args.models
    ]
    print(f"\nload average before {load[0]:.1f}, after {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    print(table(clients, "num_clients"))
    print()
    print(table(models, "model"))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"load": load, "clients": clients, "models": models}, indent=1))
    plot(clients, models, args.png)
    print(f"\nwrote {args.png} and {args.json}")


if __name__ == "__main__":
    main()
