"""What the ``reproduce_00N.py`` scripts share: their command line, resumable runs, small plots, the README.

Each reproduction script runs the offline analogue of one paper's headline experiment, keeps its raw
runs under ``--output`` (git-ignored, resumable) and writes a short ``README.md`` with the table and
a few small PNGs into ``--report-dir`` (committed under ``docs/reproduction/00N/``).

- :func:`make_parser`: the shared flags ``--output``, ``--report-dir``, ``--engine``, ``--full``,
  ``--seeds`` and ``--smoke``.
- :func:`run_cells`: run-config cells through :func:`fedrobust.experiments.sweep.run_sweep` (resumable
  ``results.jsonl``), optionally with per-round model metrics measured in this process.
- :class:`JsonCache`: resumable results of computations that are not run configs (vectorised
  simulations), one JSON file keyed by a string.
- :func:`new_figure` / :func:`save_png`: small PNGs (80 dpi, size checked).
- :func:`md_table`, :func:`write_readme`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fedrobust.config import RunConfig
from fedrobust.experiments.sweep import ENGINES, cell_id, read_sweep, run_sweep

#: The largest PNG the scripts commit, in bytes.
MAX_PNG_BYTES = 60_000
#: Resolution of the committed PNGs.
DPI = 80

#: ``metrics(strategy, round) -> {name: value}``: what a cell measures on the model after each round.
RoundMetrics = Callable[[Any, int], Mapping[str, float]]
#: ``metrics_for(config) -> RoundMetrics``: builds a cell's round metrics from its config.
MetricsFactory = Callable[[RunConfig], RoundMetrics]


def make_parser(paper: str, description: str) -> argparse.ArgumentParser:
    """The reproduction scripts' shared command line (``paper`` names the output folders, "001" to "004", as in the script names)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=f"results/reproduce/{paper}",
                        help="raw runs, reused by a rerun (default: %(default)s)")
    parser.add_argument("--report-dir", default=f"docs/reproduction/{paper}",
                        help="where README.md and the PNGs go (default: %(default)s)")
    parser.add_argument("--engine", choices=tuple(ENGINES), default="inprocess",
                        help="inprocess: fedrobust.run.inprocess (no Ray); ray: Flower's simulation engine "
                             "(default: %(default)s)")
    parser.add_argument("--full", action="store_true", help="the paper-sized setting (hours on a CPU)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per setting, averaged (default: %(default)s)")
    parser.add_argument("--smoke", action="store_true", help="a tiny setting that runs in seconds (tests)")
    return parser


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Reject flag combinations the scripts cannot honour (exits with the parser's error)."""
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.full and args.smoke:
        parser.error("--full and --smoke exclude each other")


def _inprocess_with_metrics(metrics_for: MetricsFactory):
    """A sweep cell runner: :func:`~fedrobust.run.inprocess.run_inprocess`, adding the cell's metrics to every round record."""
    from fedrobust.run.inprocess import run_inprocess

    def run_cell(cfg: RunConfig, on_round: Callable[[Any], None]) -> dict[str, Any]:
        metrics = metrics_for(cfg)
        measured: list[Mapping[str, float]] = []
        results = run_inprocess(cfg, on_round=on_round,
                                after_round=lambda strategy, rnd: measured.append(metrics(strategy, rnd)))
        for record, values in zip(results["rounds"], measured):
            record.update(values)
        return results

    return run_cell


def run_cells(
    cells: Sequence[RunConfig], out_dir: str | Path, engine: str = "inprocess", metrics_for: MetricsFactory | None = None
) -> list[dict[str, Any]]:
    """Run the cells not yet in ``out_dir/results.jsonl``; return the records of ``cells``, in their order.

    Parameters
    ----------
    cells : sequence of RunConfig
        The runs.
    out_dir : str or Path
        The sweep folder (resumable: finished cells are not run again).
    engine : {"inprocess", "ray"}
        Where the runs execute.
    metrics_for : callable, optional
        ``metrics_for(config)`` returns the cell's ``metrics(strategy, round) -> {name: value}``,
        measured on the server's model after each round and stored in that round's record (needs
        ``engine="inprocess"``).

    Raises
    ------
    ValueError
        ``metrics_for`` with the ray engine.
    RuntimeError
        A cell failed (the message lists the failures).
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if metrics_for is not None and engine != "inprocess":
        raise ValueError("per-round model metrics need the model after every round: use engine='inprocess'")
    runner = ENGINES[engine] if metrics_for is None else _inprocess_with_metrics(metrics_for)
    summary = run_sweep(list(cells), out_dir, run_cell=runner, progress=sys.stderr.isatty())
    if summary.failed:
        raise RuntimeError("some runs failed:\n" + "\n".join(f"{k}: {v}" for k, v in summary.failed.items()))
    by_id = {r["cell"]: r for r in read_sweep(out_dir)}
    return [by_id[cell_id(c)] for c in cells]


class JsonCache:
    """Results of named computations in one JSON file, so that a rerun skips the finished ones.

    Examples
    --------
    >>> import tempfile
    >>> cache = JsonCache(Path(tempfile.mkdtemp()) / "runs.json")
    >>> cache.get("a", lambda: {"x": 1}), cache.get("a", lambda: 1 / 0)
    ({'x': 1}, {'x': 1})
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.data: dict[str, Any] = json.loads(self.path.read_text()) if self.path.exists() else {}

    def get(self, key: str, compute: Callable[[], Any]) -> Any:
        """The stored value of ``key``, or ``compute()`` stored first (the file is rewritten atomically)."""
        if key not in self.data:
            self.data[key] = compute()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data))
            os.replace(tmp, self.path)
        return self.data[key]


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 3.2, height: float = 2.6):
    """A matplotlib Figure (Agg, no pyplot) of ``nrows × ncols`` panels of ``width × height`` inches each.

    Returns ``(figure, axes)`` with ``axes`` a flat list.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def save_png(fig, path: str | Path) -> Path:
    """Save ``fig`` at :data:`DPI` as a 128-colour palette PNG (a third of the RGBA size); warn on
    stderr when it still exceeds :data:`MAX_PNG_BYTES`."""
    import io

    from PIL import Image  # matplotlib's own dependency

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=DPI, format="png")
    buffer.seek(0)
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(colors=128).save(path, optimize=True)
    size = path.stat().st_size
    if size > MAX_PNG_BYTES:
        print(f"warning: {path} is {size / 1000:.0f} kB (> {MAX_PNG_BYTES / 1000:.0f} kB)", file=sys.stderr)
    return path


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A markdown table (cells converted with ``str``).

    Examples
    --------
    >>> print(md_table(["a", "b"], [[1, "x"]]))
    | a | b |
    |---|---|
    | 1 | x |
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_readme(report_dir: str | Path, text: str) -> Path:
    """Write ``report_dir/README.md`` and return its path."""
    path = Path(report_dir) / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip() + "\n", encoding="utf-8")
    return path


def fmt(value: float | None, spec: str = ".3f") -> str:
    """A number for a table, "–" for None or NaN."""
    if value is None or value != value:
        return "–"
    return format(value, spec)


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command that produced a report, for its README (the script path relative to the repo)."""
    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0])
    name = f"scripts/{script.name}" if script.parent.name == "scripts" else script.name
    return " ".join([".venv/bin/python", name, *argv[1:]])
