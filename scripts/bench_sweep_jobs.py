"""``fedrobust sweep --jobs N`` against one job on the same 8-cell grid.

The grid (mnist5k, mlp, 10 clients, 15 rounds, batch 32, lr 0.1; mean-sgd, cmd, trimmed-mean and
bgmd under ALIE at ψ = 0.1 and 0.2) is swept with one job and with ``--jobs`` jobs, in turns,
``--repeat`` times each: every sweep by the ``fedrobust`` command in a fresh process into a fresh
folder, as a user runs it (its imports, the check of the cells and the workers' start included).
Prints every wall time, the fastest of each, their ratio, and whether every sweep wrote the same
records (round timings aside).

Run: ``.venv/bin/python scripts/bench_sweep_jobs.py`` (about 2 minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fedrobust.experiments.sweep import read_sweep

GRID = """\
dataset = "mnist5k"
model = "mlp"
num-clients = 10
rounds = {rounds}
batch-size = 32
lr = 0.1
attack = "alie"
strategy = ["mean-sgd", "cmd", "trimmed-mean", "bgmd"]
byzantine-fraction = [0.1, 0.2]
"""


def records(folder: Path) -> list[tuple]:
    """The sweep's records in file order, without the keys that name seconds."""
    out = []
    for record in read_sweep(folder):
        rounds = [{k: v for k, v in r.items() if "seconds" not in k} for r in record["results"]["rounds"]]
        out.append((record["cell"], record["num_classes"], json.dumps(rounds, sort_keys=True)))
    return out


def timed_sweep(grid: Path, output: Path, jobs: int) -> float:
    cmd = [sys.executable, "-m", "fedrobust", "sweep", "--quiet", "--engine", "inprocess", "--jobs", str(jobs),
           "--output", str(output), str(grid)]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="the jobs compared with one [2]")
    parser.add_argument("--repeat", type=int, default=2, help="sweeps of each, in turns [2]")
    parser.add_argument("--rounds", type=int, default=15, help="rounds per cell [15]")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-sweep-jobs-") as tmp:
        grid = Path(tmp) / "grid.toml"
        grid.write_text(GRID.format(rounds=args.rounds), encoding="utf-8")
        times: dict[int, list[float]] = {1: [], args.jobs: []}
        written = []
        for turn in range(args.repeat):
            for jobs in times:
                folder = Path(tmp) / f"jobs{jobs}-{turn}"
                times[jobs].append(timed_sweep(grid, folder, jobs))
                written.append(records(folder))
        same = all(r == written[0] for r in written)
    for jobs, values in times.items():
        print(f"{jobs} job(s): " + ", ".join(f"{t:.1f} s" for t in values) + f" (fastest {min(values):.1f} s)")
    ratio = min(times[1]) / min(times[args.jobs])
    print(f"8 cells x {args.rounds} rounds, mnist5k/mlp, 10 clients: {args.jobs} jobs are {ratio:.2f}x one job "
          f"(fastest of {args.repeat} each); the same records in every sweep: {same}")


if __name__ == "__main__":
    main()
