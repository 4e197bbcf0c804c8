"""BGMD vs GMD: seconds per round (aggregation and total) and rounds / seconds to a target accuracy.

Acharya, Hashemi, Jain, Sanghavi, Dhillon and Topcu (2022), "Robust Training in High Dimensions via Block Coordinate Geometric Median Descent"
report BGMD at >= 3x less wall-clock time than GMD, measured against a slow GM. This script
measures fedrobust's own strategies end to end in one process (no Ray, so the times are the
server's and the clients' work, not the engine's): every round, all ``n`` clients compute one
minibatch gradient of ``lenet`` on ``mnist5k`` (honest :class:`~fedrobust.clients.GradientClient`
replies, serialised as Flower parameters), the strategy's ``aggregate_fit`` decodes, stacks and
steps, and the model is evaluated on the test split. Variants:

- ``gmd``: the full geometric median in R^d;
- ``bgmd rho=0.1`` / ``rho=0.01``, with the mean memory (``M``) and without it (``no M``).

For each number of clients (the paper's 32, and 100) it prints the median aggregation seconds per round,
the mean total seconds per round, the rounds and seconds until the test accuracy first reaches
``--target`` (``-`` if never within ``--rounds``), and every ratio gmd / variant (> 1: BGMD faster).

Run: ``.venv/bin/python scripts/bench_bgmd_vs_gmd.py`` (``--quick`` for a small smoke run).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters

from fedrobust.clients import GradientClient
from fedrobust.config import RunConfig
from fedrobust.run.evaluation import make_evaluate_fn
from fedrobust.models import flat_params
from fedrobust.core.ndarrays import to_ndarrays
from fedrobust.strategies import STRATEGIES
from fedrobust.run.build import build_model, client_data, load_splits

VARIANTS = {
    "gmd": {"strategy": "gmd"},
    "bgmd rho=0.1 M": {"strategy": "bgmd", "rho": 0.1, "memory": "mean"},
    "bgmd rho=0.1 no M": {"strategy": "bgmd", "rho": 0.1, "memory": "none"},
    "bgmd rho=0.01 M": {"strategy": "bgmd", "rho": 0.01, "memory": "mean"},
    "bgmd rho=0.01 no M": {"strategy": "bgmd", "rho": 0.01, "memory": "none"},
}


def run_variant(cfg: RunConfig, rounds: int, target: float) -> dict[str, float | None]:
    """Train one variant in-process; return its timings and when it reached ``target``."""
    splits = load_splits(cfg)
    model = build_model(cfg, splits)
    shapes = [tuple(p.shape) for p in model.parameters()]
    evaluate = make_evaluate_fn(build_model(cfg, splits), torch.from_numpy(splits.x_test), torch.from_numpy(splits.y_test))
    clients = []
    for pid in range(cfg.num_clients):  # one shared model: each fit loads the global x first
        x, y = client_data(cfg, pid)
        clients.append(GradientClient(model, x, y, partition_id=pid))
    strategy = STRATEGIES[cfg.strategy](cfg, flat_params(model), shapes)
    aggregation, total = [], []
    reached_round = reached_seconds = None
    elapsed = 0.0
    for rnd in range(1, rounds + 1):
        started = time.perf_counter()
        params, config = to_ndarrays(strategy.x, shapes), strategy.fit_config(rnd)
        results = []
        for client in clients:
            arrays, n, metrics = client.fit(params, config)
            results.append((None, FitRes(Status(Code.OK, ""), ndarrays_to_parameters(arrays), n, metrics)))
        t0 = time.perf_counter()
        strategy.aggregate_fit(rnd, results, [])
        aggregation.append(time.perf_counter() - t0)
        _, accuracy = evaluate(strategy.x)
        total.append(time.perf_counter() - started)
        elapsed += total[-1]
        if reached_round is None and accuracy >= target:
            reached_round, reached_seconds = rnd, elapsed
            break
    return {
        "aggregation": statistics.median(aggregation),
        "total": statistics.fmean(total),
        "rounds": reached_round,
        "seconds": reached_seconds,
        "accuracy": accuracy,
    }


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[32, 100])
    parser.add_argument("--model", default="lenet")
    parser.add_argument("--rounds", type=int, default=60, help="round cap per variant")
    parser.add_argument("--target", type=float, default=0.8, help="test accuracy to reach")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--quick", action="store_true", help="2 rounds, 8 clients, the mlp model")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.rounds, args.model = [8], 2, "mlp"
    for n in args.clients:
        rows = {}
        for name in args.variants:
            cfg = RunConfig(
                **VARIANTS[name], dataset="mnist5k", model=args.model, num_clients=n, clients_per_round=n,
                lr=args.lr, batch_size=args.batch_size, device="cpu",
            )
            rows[name] = run_variant(cfg, args.rounds, args.target)
            print(f"  done: {n} clients, {name}", flush=True)
        base = rows.get("gmd")
        print(f"\n{args.model}, {n} clients, target accuracy {args.target}, at most {args.rounds} rounds")
        print("| variant | agg s/round | total s/round | rounds to target | s to target | last acc | "
              "agg speed-up | total speed-up | time-to-target speed-up |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, r in rows.items():
            print(
                f"| {name} | {r['aggregation']:.3f} | {r['total']:.3f} | {_fmt(r['rounds'], 'd')} | "
                f"{_fmt(r['seconds'], '.1f')} | {r['accuracy']:.3f} | "
                f"{_ratio(base and base['aggregation'], r['aggregation'])} | {_ratio(base and base['total'], r['total'])} | "
                f"{_ratio(base and base['seconds'], r['seconds'])} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
