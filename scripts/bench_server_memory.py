"""The server's peak memory during aggregation, per strategy, against the stacked (n, d) float32 matrix.

For each strategy, a fresh Python process builds the run's strategy and ``n`` honest clients (the
in-process proxies of :mod:`fedrobust.run.inprocess`, so every protocol's real replies), runs
``--rounds`` rounds, and around the last round's ``aggregate_fit`` (decode, validate, stack, step)
measures the process's resident memory: the kernel's high-water mark (``VmHWM``, reset through
``/proc/self/clear_refs`` just before the call) minus the resident size before it. The replies
Flower holds are already resident then, so the figure is what aggregation adds. It prints, per
strategy, that peak in MB and as a multiple of the n x d x 4 bytes of the stacked matrix, next to
the factor the strategy documents (``memory_factor_for``, which the ``max-server-memory-mb`` check
uses: :mod:`fedrobust.strategies.memory`), and the persistent server state (BGMD's mean memory, FL-BGMD's per-client residuals).

Linux only (``/proc``). torch's CPU allocations are invisible to ``tracemalloc``, hence RSS; large
tensors are ``mmap``-ed and returned to the kernel on free, so the high-water mark is the peak of
what was live at once (give or take allocator caching of small blocks: read ±5 MB).

Run: ``.venv/bin/python scripts/bench_server_memory.py`` (``--quick``: mlp, 8 clients).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

DEFAULT_STRATEGIES = [
    "mean-sgd", "fedavg", "norm-threshold", "trimmed-mean", "cmd", "c-rsa", "gmd", "krum", "bgmd", "fl-bgmd",
    "signsgd-mv",
]


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def measure(strategy: str, model: str, n: int, rounds: int, extra: dict) -> dict:
    """One strategy's aggregation peak (run in a fresh process: see the module docstring)."""
    import torch
    from flwr.server.client_manager import SimpleClientManager

    from fedrobust.run.app import make_strategy
    from fedrobust.config import RunConfig
    from fedrobust.run.inprocess import LocalProxy

    torch.set_num_threads(1)
    cfg = RunConfig(
        strategy=strategy, dataset="mnist5k", model=model, num_clients=n, clients_per_round=n, device="cpu",
        rounds=rounds, **extra,
    )
    server = make_strategy(cfg)
    manager = SimpleClientManager()
    for p in range(n):
        manager.register(LocalProxy(cfg, p))
    out: dict = {}
    for rnd in range(1, rounds + 1):
        results = [(proxy, proxy.fit(ins, None, rnd)) for proxy, ins in server.configure_fit(rnd, None, manager)]
        before = _status_kb("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        server.aggregate_fit(rnd, results, [])
        peak = _status_kb("VmHWM")
        del results
        rows, d = n, server.reply_length(rnd)
        matrix = rows * d * 4
        out = {
            "strategy": strategy, "n": rows, "d": d, "matrix_mb": matrix / 2**20,
            "peak_mb": (peak - before) / 1024, "factor": (peak - before) * 1024 / matrix,
            "documented_factor": server.memory_factor_for(cfg),
            "state_mb": server_state_bytes(server) / 2**20,
        }
    return out


def server_state_bytes(server) -> int:
    """Bytes of the strategy's tensors that persist across rounds (``x``, memories, residual rows)."""
    import torch

    return sum(v.numel() * v.element_size() for v in vars(server).values() if isinstance(v, torch.Tensor))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strategies", nargs="+", default=DEFAULT_STRATEGIES)
    parser.add_argument("--model", default="lenet", help="lenet: d = 1.16M (default); mlp: d = 795k")
    parser.add_argument("--clients", type=int, default=32, help="n: clients per round (all sampled)")
    parser.add_argument("--rounds", type=int, default=2, help="measure the last (memories exist from round 2)")
    parser.add_argument("--quick", action="store_true", help="mlp, 8 clients, mean-sgd and bgmd")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.child, args.model, args.clients, args.rounds, {})))
        return
    if args.quick:
        args.model, args.clients, args.strategies = "mlp", 8, ["mean-sgd", "bgmd"]
    rows = []
    print(f"{args.model}, n = {args.clients} clients, peak during aggregate_fit of round {args.rounds}")
    print("| strategy | n x d | matrix MB | peak MB | peak / matrix | documented factor | server state MB |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name in args.strategies:
        cmd = [sys.executable, __file__, "--child", name, "--model", args.model, "--clients", str(args.clients),
               "--rounds", str(args.rounds)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"| {name} | failed: {done.stderr.strip().splitlines()[-1:]} |", flush=True)
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(r)
        doc = "-" if r["documented_factor"] is None else f"{r['documented_factor']:.2f}"
        print(
            f"| {name} | {r['n']} x {r['d']} | {r['matrix_mb']:.1f} | {r['peak_mb']:.1f} | {r['factor']:.2f} | "
            f"{doc} | {r['state_mb']:.1f} |",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
