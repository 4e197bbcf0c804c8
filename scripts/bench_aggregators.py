"""Benchmark fedrobust's aggregators against the memory-bandwidth floor and against peers.

For each (n, d) it builds n client vectors with 20% outlier rows (-100 * g), measures F, the time of
one streaming read of the matrix (``torch.sum``), and reports each aggregator's time as a multiple
of F (minimum over repeats, all measured back to back in this one run), the geometric median's
iterations and relative error against a float64 reference, BGMD's aggregation (block selection
with k = 0.1 d and 0.01 d, then the GM of the n x k block) next to the full GM, and the same
inputs through the ``geom_median`` package (by Pillutla, Kakade and Harchaoui, the authors of "Robust
Aggregation for Federated Learning", 2022) and Flower's numpy aggregators.

A second table per size (n <= 100) times the defenses (every rule of the selection, clipping and
trust families, and the pre-aggregations) next to ByzFL 0.0.11's implementation of the same rule on
the same float32 tensor, conventions matched as in tests/test_rules_byzfl.py and
tests/test_rules_selection.py (e.g. ByzFL's ``Krum(f + 1)`` is fedrobust's ``krum(x, f)``), and
checks the targets: every rule at least as fast as its ByzFL counterpart, and nearest neighbour
mixing within 1.5x of one Gram matrix plus one combine pass. For n <= 100 it also prints the Gram-based
rules (geometric median, Krum, NNM) as multiples of the plain Gram product ``x @ x.T`` plus 2 F (on
a CPU the product is compute-bound, so F alone is no floor for them), with the target 1.3x; NNM's
output is itself an (n, n) @ (n, d) product of the same size, so it is also shown against both
products plus 2 F. ByzFL is loaded as the cross-checks
load it (``pip install --no-deps byzfl==0.0.11``); without it only fedrobust's times are printed.
MDA and SMEA enumerate C(n, f) subsets (and ByzFL's SMEA copies an (n - f, d) matrix per subset),
so they are timed with a small f, said in the row.

``--device cuda`` runs everything on the GPU (the numpy peers are left out; ByzFL's torch rules run
on the same CUDA tensor), synchronising before each clock reading, and checks the CUDA targets of
the geometric median: at most 4 F at n <= 32 and 7 F at n = 100, F being one read of the matrix
(memory-bound there). ``scripts/gpu_check.sh`` runs it so.

Run: ``.venv/bin/python scripts/bench_aggregators.py`` (``--quick`` for small sizes).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

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
from fedrobust.aggregators._gram import centred_gram
from fedrobust.aggregators.bulyan import bulyan, meamed
from fedrobust.aggregators.centered_clipping import centered_clipping
from fedrobust.aggregators.filtering import caf
from fedrobust.aggregators.fltrust import fltrust
from fedrobust.aggregators.neighbours import monna
from fedrobust.aggregators.preaggregation import adaptive_clipping, bucketing, clip_rows, nearest_neighbour_mixing
from fedrobust.aggregators.subsets import minimum_diameter_average, smea

FULL_SIZES = [(10, 1_160_000), (32, 1_160_000), (100, 1_160_000), (1000, 116_000)]
QUICK_SIZES = [(10, 50_000), (32, 50_000)]
OUTLIER_FRACTION = 0.2
DEVICE = torch.device("cpu")  # --device


def _sync() -> None:
    """Wait for the device's queued kernels, so a clock reading includes them (no-op on CPU)."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def peer_time(fn, repeats: int) -> float:
    """Best of ``repeats`` calls of a peer's ``fn``, or its one call when that takes over a second
    (ByzFL's exponential rules at n = 100: repeating them would take minutes and change nothing)."""
    _sync()
    start = time.perf_counter()
    fn()
    _sync()
    first = time.perf_counter() - start
    return first if first > 1.0 else min(first, best_time(fn, repeats - 1)) if repeats > 1 else first


def best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        _sync()
        start = time.perf_counter()
        fn()
        _sync()
        best = min(best, time.perf_counter() - start)
    return best


def fresh_time(fn, x: torch.Tensor, repeats: int) -> float:
    """Best time of ``fn(y)`` on a fresh copy ``y`` of ``x`` each repeat (the copy untimed): for
    the rules that overwrite their input."""
    best = float("inf")
    for _ in range(repeats):
        y = x.clone()
        _sync()
        start = time.perf_counter()
        fn(y)
        _sync()
        best = min(best, time.perf_counter() - start)
        del y
    return best


def make_inputs(n: int, d: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator(device=DEVICE).manual_seed(seed)
    g = torch.randn(d, generator=gen, device=DEVICE)
    x = g + 0.5 * torch.randn(n, d, generator=gen, device=DEVICE)
    bad = int(OUTLIER_FRACTION * n)
    x[:bad] *= -100.0
    return x


def bgmd_aggregate(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    sel = block_select(x, k, generator=gen)
    return geometric_median(x.index_select(1, sel.indices)).median


def peers(x: torch.Tensor, f: int, beta: float) -> dict[str, callable]:
    out = {}
    if x.device.type != "cpu":  # numpy peers: timing them would time the copy to the host
        return out
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


def load_byzfl():
    """ByzFL's aggregator modules (the tests' loader), or None when ByzFL 0.0.11 is not installed."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    try:
        from _byzfl import load_byzfl_modules

        return load_byzfl_modules()
    except (ImportError, LookupError) as error:
        print(f"ByzFL not timed: {error}")
        return None


def defenses(x: torch.Tensor, f: int, byzfl) -> list[tuple[str, callable, callable | None]]:
    """(name, fedrobust call, ByzFL call of the same rule or None) on the same tensor."""
    n = x.shape[0]
    small_f = 2 if n > 10 else 1
    gen = torch.Generator(device=x.device).manual_seed(0)
    agg = byzfl.agg if byzfl else None
    pre = byzfl.pre if byzfl else None

    def peer(make):
        return make() if byzfl else None

    return [
        ("geometric median (ByzFL: T = 3 iterations)", lambda: geometric_median(x),
         peer(lambda: (lambda y, p=agg.GeometricMedian(): p(y)))),
        ("coordinate median", lambda: coordinate_median(x), peer(lambda: (lambda y, p=agg.Median(): p(y)))),
        (f"trimmed mean (f = {f})", lambda: trimmed_mean(x, f / n), peer(lambda: (lambda y, p=agg.TrMean(f): p(y)))),
        (f"krum (f = {f}; ByzFL Krum(f + 1))", lambda: krum(x, f), peer(lambda: (lambda y, p=agg.Krum(f + 1): p(y)))),
        (f"multi-krum (ByzFL MultiKrum({f}))", lambda: krum(x, f - 1, m=n - f),
         peer(lambda: (lambda y, p=agg.MultiKrum(f): p(y)))),
        ("centered clipping (tau = 100, L = 1, from 0)", lambda: centered_clipping(x, None, 100.0, 1),
         peer(lambda: (lambda y, p=agg.CenteredClipping(): p(y)))),
        (f"bulyan (f = {(n - 3) // 4}; no ByzFL peer)", lambda: bulyan(x, (n - 3) // 4), None),
        (f"meamed (f = {f})", lambda: meamed(x, f), peer(lambda: (lambda y, p=agg.Meamed(f): p(y)))),
        (f"mda (f = {small_f})", lambda: minimum_diameter_average(x, small_f),
         peer(lambda: (lambda y, p=agg.MDA(small_f): p(y)))),
        (f"monna (f = {f}, pivot row 0)", lambda: monna(x, f, pivot=0),
         peer(lambda: (lambda y, p=agg.MoNNA(f, idx=0): p(y)))),
        (f"caf (f = {f})", lambda: caf(x, f), peer(lambda: (lambda y, p=agg.CAF(f): p(y)))),
        ("smea (f = 1)", lambda: smea(x, 1), peer(lambda: (lambda y, p=agg.SMEA(1): p(y)))),
        ("fltrust (reference = last row; no ByzFL peer)", lambda: fltrust(x, x[-1]), None),
        # ByzFL's NNM gathers an (n, n - f, d) tensor: skipped where that exceeds 8 GB (37 GB at n = 100).
        (f"pre: nnm (f = {f})", lambda: nearest_neighbour_mixing(x, f),
         peer(lambda: (lambda y, p=pre.NNM(f): p(y))) if n * (n - f) * x.shape[1] * 4 <= 8e9 else None),
        ("pre: bucketing (s = 2)", lambda: bucketing(x, 2, generator=gen),
         peer(lambda: (lambda y, p=pre.Bucketing(2): p(y)))),
        ("pre: clipping (c = 2)", lambda: clip_rows(x, 2.0), peer(lambda: (lambda y, p=pre.Clipping(2.0): p(y)))),
        (f"pre: arc (f = {f})", lambda: adaptive_clipping(x, f), peer(lambda: (lambda y, p=pre.ARC(f): p(y)))),
    ]


# ByzFL's pre-aggregators that overwrite the rows they are given; fedrobust's return a new matrix
# by default and overwrite with inplace=True (what a run's pipeline does with its own stack).
IN_PLACE = {
    "pre: clipping": lambda y, f: clip_rows(y, 2.0, inplace=True),
    "pre: arc": lambda y, f: adaptive_clipping(y, f, inplace=True),
}


def run_defenses(x: torch.Tensor, floor: float, repeats: int, byzfl) -> tuple[list[str], list[str]]:
    """The defenses' table for one input and the target verdicts."""
    n = x.shape[0]
    f = int(OUTLIER_FRACTION * n)
    block = [
        f"\n#### defenses at n = {n}, d = {x.shape[1]:,}, next to ByzFL 0.0.11 (same float32 tensor)\n",
        "| rule | fedrobust ms | × F | ByzFL ms | × F | ByzFL / fedrobust |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    slower = []
    for name, ours, theirs in defenses(x, f, byzfl):
        t = best_time(ours, repeats)
        if theirs is None:
            block.append(f"| {name} | {t * 1e3:.1f} | {t / floor:.1f} | – | – | – |")
            continue
        in_place = next((fn for key, fn in IN_PLACE.items() if name.startswith(key)), None)
        try:
            theirs(x.clone())  # ByzFL written for the CPU may refuse a CUDA tensor: say so, go on
        except Exception as error:  # noqa: BLE001 - a peer's failure is a row of the table
            block.append(f"| {name} | {t * 1e3:.1f} | {t / floor:.1f} | ByzFL failed: {type(error).__name__} | – | – |")
            continue
        if in_place is None:
            p = peer_time(lambda: theirs(x), repeats)
            block.append(f"| {name} | {t * 1e3:.1f} | {t / floor:.1f} | {p * 1e3:.1f} | {p / floor:.1f} | {p / t:.1f} |")
            if p < t:
                slower.append(f"{name} ({t / p:.2f}x ByzFL's time)")
            continue
        # Both in place, each call on a fresh copy made untimed; and both keeping the caller's matrix
        # (fedrobust's default; ByzFL's call on a copy the caller makes).
        t_in = fresh_time(lambda y: in_place(y, f), x, repeats)
        p_in = fresh_time(theirs, x, repeats)
        p_copy = best_time(lambda: theirs(x.clone()), repeats)
        block.append(f"| {name}, in place | {t_in * 1e3:.1f} | {t_in / floor:.1f} | {p_in * 1e3:.1f} | "
                     f"{p_in / floor:.1f} | {p_in / t_in:.1f} |")
        block.append(f"| {name}, keeping the input (ByzFL: on a copy) | {t * 1e3:.1f} | {t / floor:.1f} | "
                     f"{p_copy * 1e3:.1f} | {p_copy / floor:.1f} | {p_copy / t:.1f} |")
        for label, ours_t, theirs_t in (("in place", t_in, p_in), ("keeping the input", t, p_copy)):
            if theirs_t < ours_t:
                slower.append(f"{name}, {label} ({ours_t / theirs_t:.2f}x ByzFL's time)")
    # NNM against its floor: one centred Gram matrix plus one (n, n) @ (n, d) combine pass.
    weights = torch.full((n, n), 1.0 / n, device=x.device)
    gram = best_time(lambda: centred_gram(x), repeats)
    mix = best_time(lambda: weights @ x, repeats)
    nnm = best_time(lambda: nearest_neighbour_mixing(x, f), repeats)
    ratio = nnm / (gram + mix)
    block.append(f"\nnnm: {nnm * 1e3:.1f} ms = {ratio:.2f} x (Gram {gram * 1e3:.1f} ms + combine {mix * 1e3:.1f} ms)")
    verdicts = [
        f"target n = {n}: nnm within 1.5x of one Gram + one combine: {'holds' if ratio <= 1.5 else 'fails'} ({ratio:.2f}x)",
        f"target n = {n}: every rule at least as fast as ByzFL's: "
        + ("holds" if byzfl and not slower else "not measured (no ByzFL)" if not byzfl else "fails: " + "; ".join(slower)),
    ]
    return block, verdicts


def run_gram_rules(x: torch.Tensor, floor: float, repeats: int) -> tuple[list[str], list[str]]:
    """The geometric median, Krum and NNM as multiples of one plain Gram product plus 2 F.

    The product, the mixing product and the rules are timed in turns within each repeat (the
    minimum of each kept), so that a slow spell of the machine does not fall on one of them only.
    """
    n = x.shape[0]
    f = int(OUTLIER_FRACTION * n)
    mixing = torch.full((n, n), 1.0 / n, device=x.device)
    scratch = x.clone()  # NNM in place (as a run's pipeline mixes its own stack) mixes this copy again and again
    calls = {
        "product": lambda: x @ x.T,
        "mixing": lambda: mixing @ x,
        "geometric_median": lambda: geometric_median(x),
        "krum (f=20%)": lambda: krum(x, f),
        "nnm (f=20%)": lambda: nearest_neighbour_mixing(x, f),
        "nnm (f=20%), in place": lambda: nearest_neighbour_mixing(scratch, f, inplace=True),
    }
    times = dict.fromkeys(calls, float("inf"))
    for _ in range(repeats):
        for name, fn in calls.items():
            times[name] = min(times[name], best_time(fn, 1))
    product, mix = times.pop("product"), times.pop("mixing")
    base = product + 2 * floor
    block = [
        f"\nGram-based rules: the product x @ x.T takes {product * 1e3:.1f} ms = {product / floor:.1f} F; "
        f"an (n, n) @ (n, d) mixing product {mix * 1e3:.1f} ms (timed in turns with the rules)\n",
        "| rule | ms | / (product + 2 F) | / (product + mixing + 2 F) |",
        "|---|---:|---:|---:|",
    ]
    verdicts = []
    for name, t in times.items():
        both = f"{t / (base + mix):.2f}" if name.startswith("nnm") else "–"
        block.append(f"| {name} | {t * 1e3:.1f} | {t / base:.2f} | {both} |")
        ratio = t / base
        verdicts.append(f"target n = {n}: {name.replace(' (f=20%)', '')} <= 1.3 x (Gram product + 2 F): "
                        f"{'holds' if ratio <= 1.3 else 'fails'} ({ratio:.2f}x)")
    return block, verdicts


def run(sizes, repeats: int, with_peers: bool, defenses_only: bool = False) -> list[str]:
    lines, verdicts = [], []
    byzfl = load_byzfl() if with_peers else None
    for n, d in sizes:
        x = make_inputs(n, d)
        f = int(OUTLIER_FRACTION * n)
        beta = 0.25
        floor = best_time(lambda: torch.sum(x), repeats * 3)
        gen = torch.Generator(device=x.device).manual_seed(0)
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
        if defenses_only:
            rows = {}
        block = [
            f"\n### n = {n}, d = {d:,}: F = {floor * 1e3:.2f} ms (one torch.sum over the matrix)\n",
            "| aggregator | ms | × F |",
            "|---|---:|---:|",
        ]
        for name, fn in rows.items():
            t = best_time(fn, 1 if name.startswith("peer") else repeats)
            block.append(f"| {name} | {t * 1e3:.1f} | {t / floor:.1f} |")
            if DEVICE.type == "cuda" and name.startswith("geometric_median") and n <= 100:
                limit = 4 if n <= 32 else 7
                verdicts.append(f"target cuda n = {n}, d = {d:,}: geometric median <= {limit} F: "
                                f"{'holds' if t <= limit * floor else 'fails'} ({t / floor:.1f} F)")
        if n > 100:
            per_iter = best_time(lambda: geometric_median(x), 1) / max(1, gm.iterations) / floor
            block.append(f"\nGM at n = {n}: {per_iter:.1f} F per iteration")
        if n <= 100:
            extra, checks = run_gram_rules(x, floor, repeats)
            block.extend(extra)
            verdicts.extend(checks)
            extra, checks = run_defenses(x, floor, repeats, byzfl)
            block.extend(extra)
            verdicts.extend(checks)
        print("\n".join(block), flush=True)
        lines.extend(block)
    print("\n" + "\n".join(verdicts))
    return lines + verdicts


def run_median_rows(rows, d: int, repeats: int, beta: float = 0.2) -> list[str]:
    """coordinate_median and trimmed_mean past the sorting networks' rows, next to numpy's.

    On one float32 (n, d) normal matrix per n: fedrobust's median against ``np.median(axis=0)``
    (Flower's aggregate_median), its trimmed mean against ``np.sort(axis=0)[b:n - b].mean(0)``
    (ByzFL's TrMean), fedrobust at the machine's numba threads and at one (numpy's run on one). The
    target: fedrobust at least as fast as that peer at both. The median row also shows the
    ``np.sort`` route to the same median, for information.
    """
    import numba

    threads = numba.get_num_threads()
    lines = [
        f"\n#### median / trimmed mean (beta = {beta}) past 64 rows, d = {d:,}, float32; "
        f"numba {threads} threads, torch {torch.get_num_threads()}; minimum of {repeats}\n",
        f"| n | rule | fedrobust ms ({threads} threads) | 1 thread ms | peer | peer ms | peer / fedrobust | "
        "peer / fedrobust, 1 thread | np.sort route ms |",
        "|---:|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    verdicts = []
    for n in rows:
        x = torch.randn(n, d, generator=torch.Generator().manual_seed(n))
        arr = x.numpy()
        b = int(beta * n)
        lo, hi = (n - 1) // 2, n // 2 + 1
        cases = [
            ("median", lambda: coordinate_median(x), "np.median", lambda: np.median(arr, axis=0),
             lambda: np.sort(arr, axis=0)[lo:hi].mean(axis=0)),
            (f"trimmed mean (b = {b})", lambda: trimmed_mean(x, beta), "np.sort",
             lambda: np.sort(arr, axis=0)[b:n - b].mean(axis=0), None),
        ]
        ok = True
        for name, ours, peer_name, peer, route in cases:
            ours()  # compiled and warm
            t = best_time(ours, repeats)
            numba.set_num_threads(1)
            try:
                t1 = best_time(ours, repeats)
            finally:
                numba.set_num_threads(threads)
            p = best_time(peer, repeats)
            r = f"{best_time(route, repeats) * 1e3:.1f}" if route is not None else "–"
            lines.append(f"| {n} | {name} | {t * 1e3:.1f} | {t1 * 1e3:.1f} | {peer_name} | {p * 1e3:.1f} | "
                         f"{p / t:.2f} | {p / t1:.2f} | {r} |")
            ok = ok and t <= p and t1 <= p
        verdicts.append(f"target n = {n}: median and trimmed mean at least as fast as their peer "
                        f"(at {threads} threads and at 1): {'holds' if ok else 'fails'}")
    print("\n".join(lines + [""] + verdicts), flush=True)
    return lines + verdicts


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per measurement (the minimum is kept)")
    parser.add_argument("--no-peers", action="store_true", help="skip geom_median and Flower's aggregators")
    parser.add_argument("--sizes", default="", metavar="NxD,...",
                        help="the sizes, e.g. 10x1160000,32x1160000 (default: n = 10, 32, 100 at d = 1.16M, 1000 at 116k)")
    parser.add_argument("--defenses-only", action="store_true",
                        help="only the defenses' table next to ByzFL (and the nnm and speed targets)")
    parser.add_argument("--median-rows", default="", metavar="N,N,...",
                        help="only time the median and trimmed mean at these n against numpy (e.g. 65,100,1000)")
    parser.add_argument("--median-cols", type=int, default=100_000, help="d for --median-rows")
    parser.add_argument("--device", default="cpu", help="torch device of the inputs, e.g. cuda [cpu]")
    args = parser.parse_args(argv)
    global DEVICE
    DEVICE = torch.device(args.device)
    where = torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else f"{torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {DEVICE.type}: {where}, numpy {np.__version__}")
    if args.median_rows:
        run_median_rows([int(n) for n in args.median_rows.split(",")], args.median_cols, args.repeats)
        return
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")] if args.sizes else (
        QUICK_SIZES if args.quick else FULL_SIZES)
    run(sizes, args.repeats, not args.no_peers, args.defenses_only)


if __name__ == "__main__":
    main()
