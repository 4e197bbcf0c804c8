"""The benchmark protocol end to end: a tuned sweep, then its worst-case tables and heatmaps.

Which defense holds up in a given setting? Each strategy runs against every attack of the grid, at
every Byzantine fraction ψ and partition (IID and Dirichlet α = 0.3), at each candidate learning
rate. Per strategy and setting the report picks the learning rate whose worst attack has the highest
final **validation** accuracy (a split no client trains on; the test split plays no part), then
gives test accuracy there: the worst case over attacks per ψ × heterogeneity, which attack
achieved it, the chosen values, and one heatmap per strategy.

Default: the shipped grid ``benchmark`` (``fedrobust/grids/benchmark.toml``: 196 runs of 15 rounds on mnist5k / mlp, 10 clients,
in process; about 8 minutes on 2 CPU cores). ``--full``: ``benchmark-full``
(4,680 runs: 10 strategies, 6 attacks, 3 partitions, lr and worker momentum tuned, 3 seeds, 40
rounds; for a bigger machine, with ``--device cuda`` on a GPU). The sweep resumes where it stopped
when rerun with the same ``--output``. The report lands in ``OUTPUT/report``; ``--publish DIR``
also writes the tables and heatmaps (without the per-setting curves) into DIR, as in
``docs/benchmark/``.

Run: ``.venv/bin/python scripts/benchmark.py`` (or ``--full``, ``--grid FILE``, ``--engine ray``, ``--rounds N``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from fedrobust.experiments.report import write_report
from fedrobust.experiments.sweep import ENGINES, expand_grid, load_grid, run_sweep, tuned_axes

GRIDS = {False: "benchmark", True: "benchmark-full"}  # shipped with fedrobust (fedrobust.grids)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the full grid (benchmark-full)")
    parser.add_argument("--grid", default=None, help="another tuned grid file instead (e.g. a smaller one)")
    parser.add_argument("--output", default=None, help="the sweep's folder (default results/benchmark[-full])")
    parser.add_argument("--engine", choices=sorted(ENGINES), default="inprocess",
                        help="inprocess (default): no Ray (fedrobust.run.inprocess); ray: Flower's simulation engine")
    parser.add_argument("--device", default=None, help="the runs' device, e.g. cuda (default: the grid's, cpu/auto)")
    parser.add_argument("--rounds", type=int, default=None, help="server rounds per run (default: the grid's)")
    parser.add_argument("--publish", default=None, metavar="DIR",
                        help="also write the tables and heatmaps, without the curves, into DIR (e.g. docs/benchmark)")
    parser.add_argument("--jobs", type=int, default=1, help="cells at once, in worker processes (in-process engine)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    name = args.grid or GRIDS[args.full]
    grid = load_grid(name)
    for key, value in (("device", args.device), ("rounds", args.rounds)):
        if value is not None:
            grid[key] = value
    cells = expand_grid(grid)
    out = Path(args.output or ("results/benchmark-full" if args.full else "results/benchmark"))
    print(f"{Path(name).name}: {len(cells)} runs, tuned {tuned_axes(grid)}, engine {args.engine}, "
          f"into {out}")
    start = time.perf_counter()
    summary = run_sweep(cells, out, run_cell=ENGINES[args.engine], progress=not args.quiet, tuned=tuned_axes(grid),
                        jobs=args.jobs)
    seconds = time.perf_counter() - start
    print(f"{summary.ran} runs in {seconds / 60:.1f} min ({summary.skipped} already done, {len(summary.failed)} failed)")
    if summary.failed:
        raise SystemExit(f"{len(summary.failed)} run(s) failed: {summary.failed}")
    written = write_report(out, out / "report")
    print(f"report: {written[0]} and {len(written) - 1} figures")
    if args.publish:
        published = write_report(out, args.publish, plots=False)
        print(f"published: {published[0]} and {len(published) - 1} heatmaps")


if __name__ == "__main__":
    main()
