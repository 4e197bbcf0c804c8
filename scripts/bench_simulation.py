"""Seconds per round of the same simulation under each strategy, and where the time goes.

Runs one simulation per strategy back to back in this process (Flower's engine, Ray backend, by
default; ``--engine inprocess`` runs the same objects without Ray), all on the same workload
(``--model`` on ``--dataset``, ``--clients-per-round`` of ``--num-clients`` clients, seed 0), and
prints per strategy the median seconds per round and its overhead against the baseline of its
protocol family: ``fedavg`` for the local-steps strategies (``fl-bgmd``), ``mean-sgd`` for the
rest (one minibatch gradient per client: gmd, bgmd, cmd, trimmed-mean, krum, norm-threshold,
c-rsa, signsgd-mv, ...). ``--repeat`` runs the whole sequence again (interleaved, so slow drifts of
a shared machine hit every strategy alike) and pools the rounds. Round 1 of every run is a
warm-up (actors import torch, build the data) and is left out. Next to the whole round's overhead
(noisy on a shared machine: other load moves it by tens of percent) it prints the server's own
extra work (``configure`` + ``stack`` + ``aggregate`` against the baseline's, as a share of the
baseline's round: small, measured in this process, far less noisy) and the clients' extra work.

Each round is split into (medians over the measured rounds, seconds):

- ``configure``: sampling and serialising the model for the clients (server side);
- ``clients``: the clients' own fit time (each client reports ``fit_seconds`` in its metrics:
  load, local work, encoding and its Flower (de)serialisation), summed over the round's clients
  and divided by the number of clients that run at once (``num-cpus`` per actor on this machine's
  CPUs; 1 in process): an estimate of the round's wall time spent training;
- ``stack``: decoding, validating and stacking the replies into the (n, d) matrix (server);
- ``aggregate``: the strategy's ``aggregation_seconds`` (aggregation function and model step);
- ``evaluate``: the central evaluation of the new model on the test split;
- ``engine``: the rest of ``round_seconds``: the engine's scheduling, message transport and
  ``Context.state`` traffic (Ray), and clients waiting on each other.

Run: ``.venv/bin/python scripts/bench_simulation.py`` (defaults: lenet on mnist5k, 32 clients per
round, 6 rounds, twice); ``--quick`` for a smoke run (mlp, 4 clients, 2 rounds, in process).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_STRATEGIES = ["mean-sgd", "norm-threshold", "trimmed-mean", "c-rsa", "bgmd", "gmd", "fedavg", "fl-bgmd"]
PARTS = ("configure", "clients", "stack", "aggregate", "evaluate", "engine")
SERVER_PARTS = ("configure", "stack", "aggregate")  # what the strategy's server code does per round


def baseline_of(strategy: str) -> str:
    """The mean-aggregating baseline a strategy is compared with: same client work, plain mean.

    Examples
    --------
    >>> baseline_of("bgmd"), baseline_of("fl-bgmd"), baseline_of("fedavg")
    ('mean-sgd', 'fedavg', 'fedavg')
    """
    from fedrobust.strategies import STRATEGIES

    protocol = STRATEGIES[strategy].protocol
    return "fedavg" if protocol in ("local-steps", "compressed-local-steps") else "mean-sgd"


class Timings:
    """Per-round timings of one run, filled by wrappers around the strategy's methods."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.rounds: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.current = 0

    def instrument(self, strategy: Any) -> None:
        """Wrap ``configure_fit``, ``aggregate_fit``, ``_stack`` and ``evaluate_fn`` of one strategy
        instance (its class is left alone)."""
        def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    self.rounds[self.current][name] += time.perf_counter() - t0
            return wrapper

        configure, aggregate = strategy.configure_fit, strategy.aggregate_fit

        def configure_fit(server_round: int, *args: Any, **kwargs: Any) -> Any:
            self.current = server_round
            return timed("configure", configure)(server_round, *args, **kwargs)

        def aggregate_fit(server_round: int, results: list, failures: list) -> Any:
            fit = [res.metrics.get("fit_seconds", math.nan) for _, res in results]
            self.rounds[server_round]["clients"] = sum(float(s) for s in fit) / self.concurrency
            return aggregate(server_round, results, failures)

        strategy.configure_fit = configure_fit
        strategy.aggregate_fit = aggregate_fit
        strategy._stack = timed("stack", strategy._stack)
        if strategy.evaluate_fn is not None:
            strategy.evaluate_fn = timed("evaluate", strategy.evaluate_fn)

    def breakdown(self, records: list[dict[str, Any]]) -> list[dict[str, float]]:
        """One dict per round record: ``round`` seconds and the parts of :data:`PARTS`."""
        out = []
        for r in records:
            t = self.rounds.get(r["round"], {})
            row = {"round": r["round_seconds"], "aggregate": r["aggregation_seconds"]}
            for part in ("configure", "clients", "stack", "evaluate"):
                row[part] = float(t.get(part, 0.0))
            row["engine"] = row["round"] - sum(row[p] for p in PARTS if p != "engine")
            out.append(row)
        return out


class MemoryTracker:
    """Peak resident memory (MB) of this process (the server: the ServerApp runs in a thread of it)
    and of this process with all its descendants (Ray's GCS, raylet, dashboard, workers and client
    actors), sampled from ``/proc`` every ``interval`` seconds in a background thread (Linux)."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.tree_peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemoryTracker:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def server_peak_mb(self) -> float:
        """This process's high-water mark (``VmHWM``) since it started, in MB."""
        return _status_kb(os.getpid(), "VmHWM") / 1024

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        total = sum(_status_kb(pid, "VmRSS") for pid in _descendants(os.getpid()) | {os.getpid()})
        self.tree_peak_mb = max(self.tree_peak_mb, total / 1024)


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:  # the process ended meanwhile
        pass
    return 0


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children[ppid].append(int(entry.name))
    out, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def _quiet_flower() -> None:
    """Flower's warnings only (set after flwr is imported: importing it sets its own level)."""
    import flwr

    logger = logging.getLogger(flwr.__name__)
    logger.setLevel(logging.WARNING)
    if not any(getattr(f, "__name__", "") == "_no_deprecation_notice" for f in logger.filters):
        logger.addFilter(_no_deprecation_notice)


def _no_deprecation_notice(record: logging.LogRecord) -> bool:
    return "`run_simulation` function is deprecated" not in record.getMessage()


def run_one(cfg: Any, engine: str) -> tuple[dict[str, Any], list[dict[str, float]]]:
    """One run of ``cfg``; returns (its results document, the per-round breakdown)."""
    from fedrobust.run.app import make_client_app, make_server_app
    from fedrobust.run.simulation import backend_config, check_runnable

    _quiet_flower()
    check_runnable(cfg)
    if engine == "inprocess":
        timings = Timings(concurrency=1)
        results = _run_inprocess(cfg, timings)
        return results, timings.breakdown(results["rounds"])
    from flwr.simulation import run_simulation

    timings = Timings(concurrency=max(1, math.floor((os.cpu_count() or 1) / cfg.num_cpus)))
    strategies: list[Any] = []

    def built(strategy: Any) -> None:
        timings.instrument(strategy)
        strategies.append(strategy)

    run_simulation(
        server_app=make_server_app(cfg, on_strategy=built), client_app=make_client_app(cfg),
        num_supernodes=cfg.num_clients, backend_name="ray", backend_config=backend_config(cfg),
    )
    _quiet_flower()  # run_simulation resets Flower's console handler
    if not strategies:
        raise RuntimeError("the simulation ended before its ServerApp built a strategy (see the log above)")
    results = strategies[-1].results()
    return results, timings.breakdown(results["rounds"])


def _run_inprocess(cfg: Any, timings: Timings) -> dict[str, Any]:
    """:func:`fedrobust.run.inprocess.run_inprocess` with the strategy instrumented as it is built."""
    from fedrobust import app, inprocess

    make_strategy = app.make_strategy

    def instrumented(*args: Any, **kwargs: Any) -> Any:
        strategy = make_strategy(*args, **kwargs)
        timings.instrument(strategy)
        return strategy

    app.make_strategy = instrumented  # run_inprocess imports it from the module at call time
    try:
        results = inprocess.run_inprocess(cfg)
    finally:
        app.make_strategy = make_strategy
    return results


def summarise(rows: list[dict[str, float]]) -> dict[str, float]:
    """Medians over the measured rounds of every part, and ``round``."""
    return {k: statistics.median(r[k] for r in rows) for k in ("round", *PARTS)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strategies", nargs="+", default=DEFAULT_STRATEGIES)
    parser.add_argument("--model", default="lenet")
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument("--clients-per-round", type=int, default=32)
    parser.add_argument("--num-clients", type=int, default=0, help="0: clients-per-round")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per run, the first a warm-up")
    parser.add_argument("--repeat", type=int, default=2, help="run the whole sequence this many times")
    parser.add_argument("--engine", choices=("ray", "inprocess"), default="ray")
    parser.add_argument("--local-steps", type=int, default=1, help="fedavg / fl-bgmd local steps")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="further run keys")
    parser.add_argument("--json", default=None, help="write every round's breakdown to this JSON file")
    parser.add_argument("--track-memory", action="store_true",
                        help="report the peak RSS of this process (server) and of its whole process tree (Linux)")
    parser.add_argument("--quick", action="store_true", help="smoke run: mlp, 4 clients, 2 rounds, in process")
    args = parser.parse_args(argv)
    if args.quick:
        args.model, args.clients_per_round, args.rounds, args.repeat = "mlp", 4, 2, 1
        args.engine, args.strategies = "inprocess", ["mean-sgd", "trimmed-mean"]
    if args.rounds < 2:
        parser.error("--rounds must be >= 2 (round 1 is a warm-up)")

    from fedrobust.config import RunConfig, parse_params

    extra = {k.replace("-", "_"): v for k, v in parse_params(",".join(args.set), "--set").items()}
    base = dict(
        dataset=args.dataset, model=args.model, clients_per_round=args.clients_per_round,
        num_clients=args.num_clients or args.clients_per_round, rounds=args.rounds, device="cpu",
        local_steps=args.local_steps, **extra,
    )
    needed = list(dict.fromkeys([*(baseline_of(s) for s in args.strategies), *args.strategies]))
    pooled: dict[str, list[dict[str, float]]] = defaultdict(list)
    load = os.getloadavg()
    started = time.perf_counter()
    memory: dict[str, dict[str, float]] = {}
    for rep in range(args.repeat):
        for name in needed:
            cfg = RunConfig(strategy=name, **base)
            with MemoryTracker() if args.track_memory else contextlib.nullcontext() as tracker:
                _, rows = run_one(cfg, args.engine)
            pooled[name].extend(rows[1:])
            s = summarise(rows[1:])
            line = f"  [{rep + 1}/{args.repeat}] {name}: {s['round']:.3f} s/round"
            if tracker is not None:
                memory[name] = {"server_peak_mb": tracker.server_peak_mb, "tree_peak_mb": tracker.tree_peak_mb}
                line += f"; peak RSS: server {tracker.server_peak_mb:.0f} MB, whole run {tracker.tree_peak_mb:.0f} MB"
            print(line, flush=True)
    wall = time.perf_counter() - started
    summary = {name: summarise(rows) for name, rows in pooled.items()}
    print(
        f"\n{args.model} on {args.dataset}, {base['clients_per_round']} of {base['num_clients']} clients per round, "
        f"engine {args.engine}, {args.rounds - 1} measured rounds x {args.repeat}; load average before "
        f"{load[0]:.1f} / after {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {wall:.0f} s in all"
    )
    print("| strategy | s/round | vs baseline | server vs baseline | clients vs baseline | " + " | ".join(PARTS) + " |")
    print("|---|---:|---:|---:|---:|" + "---:|" * len(PARTS))
    for name in needed:
        s, b = summary[name], summary[baseline_of(name)]
        if baseline_of(name) == name:
            rel = server = clients = "baseline"
        else:  # the server's own extra work (low noise) and the clients' (noisy), over the baseline's round
            rel = f"{100 * (s['round'] / b['round'] - 1):+.1f}%"
            server = f"{100 * sum(s[p] - b[p] for p in SERVER_PARTS) / b['round']:+.1f}%"
            clients = f"{100 * (s['clients'] - b['clients']) / b['round']:+.1f}%"
        parts = " | ".join(f"{s[p]:.3f}" for p in PARTS)
        print(f"| {name} | {s['round']:.3f} | {rel} | {server} | {clients} | {parts} |")
    out = {"args": vars(args), "load": load, "summary": summary, "rounds": pooled, "memory": memory}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
