"""A Ray-engine sweep with one Ray head for all its cells against one Ray instance per cell.

The same 4-cell grid (mean-sgd, gmd, cmd, bgmd on mnist5k / mlp, 10 clients, 20 rounds) is swept
twice into fresh folders: as ``fedrobust sweep`` does it (one private head, every cell attached),
then with the head replaced by nothing, so every cell starts and stops a Ray instance of its own
(what a sweep did before). Prints both wall times and their ratio, from one run.

Run: ``.venv/bin/python scripts/bench_ray_head.py`` (about 5 minutes on 2 CPU cores).
"""

from __future__ import annotations

import contextlib
import tempfile
import time

from fedrobust.experiments import sweep
from fedrobust.run import ray_head

GRID = {"strategy": ["mean-sgd", "gmd", "cmd", "bgmd"], "dataset": "mnist5k", "num-clients": 10,
        "clients-per-round": 10, "rounds": 20, "device": "cpu"}


def timed_sweep() -> float:
    start = time.perf_counter()
    sweep.run_sweep(GRID, tempfile.mkdtemp(prefix="bench-ray-head-"), progress=False)
    return time.perf_counter() - start


def main() -> None:
    head = timed_sweep()
    original = ray_head.local_ray_head
    ray_head.local_ray_head = lambda: contextlib.nullcontext(None)  # no head: a Ray instance per cell
    try:
        per_cell = timed_sweep()
    finally:
        ray_head.local_ray_head = original
    print(f"4 cells x 20 rounds, mnist5k/mlp, 10 clients: one head {head:.1f} s, "
          f"a Ray instance per cell {per_cell:.1f} s ({per_cell / head:.2f}x)")


if __name__ == "__main__":
    main()
