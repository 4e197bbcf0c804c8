"""Benchmark fedrobust's aggregators against the memory-bandwidth floor and against peers.

For each (n, d) it builds n client vectors with 20% outlier rows (-100 * g), measures F, the time of
one streaming read of the matrix (``torch.sum``), and reports each aggregator's time as a multiple
of F (minimum over repeats, all measured back to back in this one run), the geometric median's
iterations and relative error against a float64 reference, BGMD's aggregation (block selection
with k = 0.1 d and 0.01 d, then the GM of the n x k block) next to the full GM, and the same
inputs through the ``geom_median`` package (by Pillutla, Kakade and Harchaoui, the authors of "Robust
Aggregation for Federated Learning", 2022) and Flower's numpy aggregators.

Run: ``.venv/bin/python scripts/bench_aggregators.py`` (``--quick`` for small sizes).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from fedrobust.aggregators import (
    block_select,
    coordinate_median,
    geometric_median,
    krum,
    mean,
    norm_trim,
    sign_majority,
    trimmed_mean,
)

FULL_SIZES = [(10, 1_160_000), (32, 1_160_000), (100, 1_160_000), (1000, 116_000)]
QUICK_SIZES = [(10, 50_000), (32, 50_000)]
OUTLIER_FRACTION = 0.2


def best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def make_inputs(n: int, d: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    g = torch.randn(d, generator=gen)
    x = g + 0.5 * torch.randn(n, d, generator=gen)
    bad = int(OUTLIER_FRACTION * n)
    x[:bad] *= -100.0
    return x


def bgmd_aggregate(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    sel = block_select(x, k, generator=gen)
    return geometric_median(x.index_select(1, sel.indices)).median


def peers(x: torch.Tensor, f: int, beta: float) -> dict[str, callable]:
    out = {}
    arrays = [(row.numpy(),) for row in x]
    results = [([a[0]], 1) for a in arrays]
    try:
        from geom_median.numpy import compute_geometric_median

        rows = [a[0] for a in arrays]
        out["peer: geom_median (numpy)"] = lambda: compute_geometric_median(rows, eps=1e-8, maxiter=100)
    except ImportError:  # pragma: no cover - optional peer
        pass
    from flwr.server.strategy.aggregate import aggregate_krum, aggregate_median, aggregate_trimmed_avg

    out["peer: Flower aggregate_median"] = lambda: aggregate_median(results)
    out["peer: Flower aggregate_trimmed_avg"] = lambda: aggregate_trimmed_avg(results, beta)
    if x.shape[0] <= 100:
        out["peer: Flower aggregate_krum"] = lambda: aggregate_krum(results, f, 1)
    return out


def run(sizes, repeats: int, with_peers: bool) -> list[str]:
    lines = []
    for n, d in sizes:
        x = make_inputs(n, d)
        f = int(OUTLIER_FRACTION * n)
        beta = 0.25
        floor = best_time(lambda: torch.sum(x), repeats * 3)
        gen = torch.Generator().manual_seed(0)
        gm = geometric_median(x)
        reference = geometric_median(x.double(), tol=1e-13).median
        rel_err = float((gm.median.double() - reference).norm() / reference.norm())
        rows = {
            "mean": lambda: mean(x),
            "coordinate_median": lambda: coordinate_median(x),
            "trimmed_mean (beta=0.25)": lambda: trimmed_mean(x, beta),
            "norm_trim (beta=0.25)": lambda: norm_trim(x, beta),
            "sign_majority": lambda: sign_majority(x),
            f"geometric_median ({gm.iterations} it, rel.err {rel_err:.1e})": lambda: geometric_median(x),
            "block_select k=0.1d": lambda: block_select(x, d // 10, generator=gen),
            "block_select k=0.01d": lambda: block_select(x, d // 100, generator=gen),
            "BGMD aggregation k=0.1d": lambda: bgmd_aggregate(x, d // 10, gen),
            "BGMD aggregation k=0.01d": lambda: bgmd_aggregate(x, d // 100, gen),
        }
        if 2 * f + 2 < n and n <= 100:
            rows["krum (f=20%)"] = lambda: krum(x, f)
        if with_peers:
            rows.update(peers(x, f, beta))
        block = [
            f"\n### n = {n}, d = {d:,}: F = {floor * 1e3:.2f} ms (one torch.sum over the matrix)\n",
            "| aggregator | ms | × F |",
            "|---|---:|---:|",
        ]
        for name, fn in rows.items():
            t = best_time(fn, 1 if name.startswith("peer") else repeats)
            block.append(f"| {name} | {t * 1e3:.1f} | {t / floor:.1f} |")
        if n > 100:
            per_iter = best_time(lambda: geometric_median(x), 1) / max(1, gm.iterations) / floor
            block.append(f"\nGM at n = {n}: {per_iter:.1f} F per iteration")
        print("\n".join(block), flush=True)
        lines.extend(block)
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per measurement (the minimum is kept)")
    parser.add_argument("--no-peers", action="store_true", help="skip geom_median and Flower's aggregators")
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, numpy {np.__version__}")
    run(QUICK_SIZES if args.quick else FULL_SIZES, args.repeats, not args.no_peers)


if __name__ == "__main__":
    main()
