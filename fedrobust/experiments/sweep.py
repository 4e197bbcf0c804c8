"""Grid sweeps: every cell of a grid of run configs, run one by one, appended to ``results.jsonl``.

A grid maps run-config keys to values: a list is an axis of the grid, a scalar is fixed for every
cell (``GRID.toml`` holds exactly that, see :func:`load_grid`). Each finished cell becomes one line
of ``DIR/results.jsonl``::

    {"cell": ID, "config": {...every run key...}, "num_classes": 10, "results": {...}}

where ``results`` is the run's results document (see ``docs/simulation.md``) and ``ID`` is
:func:`cell_id`, a hash of the full config. A rerun skips every cell whose id is already in the
file, so an interrupted sweep resumes where it stopped; a partly written last line (the process
was killed while writing it) is dropped, and a cell whose record is malformed (no ``results``, a
non-numeric accuracy, ...: :func:`~fedrobust.experiments.cellrecord.record_problem`) is run again.

Two keys of a grid are not run keys. ``[[grid]]`` tables are sub-grids: each is the top-level
keys updated by the table's own, expanded on its own, and the cells of all of them run as one sweep
(so a clean ψ = 0 cell need not be repeated once per attack). ``tuned`` lists axes whose values the
report chooses on the validation split (:data:`TUNED_KEY`, :func:`tuned_axes`); the sweep records
them in ``DIR/tuning.json`` and runs every cell as usual.

Examples
--------
>>> cells = expand_grid({"strategy": ["bgmd", "gmd"], "seed": [0, 1], "rounds": 3})
>>> [(c.strategy, c.seed, c.rounds) for c in cells]
[('bgmd', 0, 3), ('bgmd', 1, 3), ('gmd', 0, 3), ('gmd', 1, 3)]
>>> cell_id(cells[0]) == cell_id(cells[0].replace()) != cell_id(cells[1])
True
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import os
import sys
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .cellrecord import record_problem
from .selection import COMPARED_KEYS
from ..config import ConfigError, RunConfig, key_of, placement_keys
from ..core.paths import check_output_dir
from ..core.results import RoundRecord

__all__ = [
    "RESULTS_FILE",
    "TUNED_KEY",
    "TUNING_FILE",
    "SUBGRID_KEY",
    "SweepSummary",
    "tuned_axes",
    "read_tuning",
    "load_grid",
    "expand_grid",
    "cell_id",
    "grid_warnings",
    "read_sweep",
    "simulate_cell",
    "inprocess_cell",
    "ENGINES",
    "run_sweep",
]

#: Name of the file a sweep appends its finished cells to, inside the sweep's folder.
RESULTS_FILE = "results.jsonl"

#: Grid key listing the axes the report tunes on the validation split (not a run key).
TUNED_KEY = "tuned"
#: Grid key of the sub-grids, an array of tables (``[[grid]]`` in TOML).
SUBGRID_KEY = "grid"
#: The file, inside the sweep's folder, recording the tuned axes and their values in grid order.
TUNING_FILE = "tuning.json"

#: ``run_cell(config, on_round) -> results document``: how a sweep runs one cell.
CellRunner = Callable[[RunConfig, Callable[[RoundRecord], None]], Mapping[str, Any]]


@dataclasses.dataclass(frozen=True)
class SweepSummary:
    """What one call of :func:`run_sweep` did.

    Attributes
    ----------
    path : Path
        The ``results.jsonl`` file.
    cells : int
        Cells in the grid.
    skipped : int
        Cells already in the file before this call (not run again).
    ran : int
        Cells run and appended by this call.
    failed : dict
        Cell id → error message of the cells whose run raised (not appended; a rerun retries them).
    left : int
        Cells not run because of ``max_cells`` (a rerun runs them).
    """

    path: Path
    cells: int
    skipped: int
    ran: int
    failed: dict[str, str]
    left: int = 0


def load_grid(path: str | Path) -> dict[str, Any]:
    """Read a ``GRID.toml``: top-level run-config keys, each a scalar or a list of scalars.

    ``path`` is a file, or the name of a grid shipped with fedrobust (:mod:`fedrobust.grids`:
    ``demo``, ``benchmark``, ...).

    Raises
    ------
    ConfigError
        The file is not valid TOML (the message names the file and the parser's complaint).
    FileNotFoundError
        Neither a file nor a shipped grid's name.
    """
    from ..grids import resolve

    path = resolve(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None


def _label(axes: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in axes.items()) or "the only cell"


def expand_grid(grid: Mapping[str, Any]) -> list[RunConfig]:
    """All cells of ``grid`` (axes in key order, the last axis varying fastest), each validated.

    Parameters
    ----------
    grid : mapping
        Run-config key → scalar (fixed) or non-empty list of distinct scalars (an axis).

    Returns
    -------
    list of RunConfig
        One validated config per cell.

    Raises
    ------
    ConfigError
        One line per problem, across all cells, before anything runs: a table or an empty or
        repeating list as a value, the ``output`` key (a sweep writes its own files), an axis of
        more than one value over a placement key (:data:`PLACEMENT_KEYS`: cell ids leave those
        out, so its cells would collapse into one), a cell that :meth:`RunConfig.from_mapping`
        rejects, or two cells that are the same run (e.g. ``lr = [1, 1.0]``); the line names the
        cell by its axis values.

    Examples
    --------
    >>> expand_grid({"lr": [0.1, -1], "strategy": "mean-sgd"})
    Traceback (most recent call last):
    ...
    fedrobust.core.errors.ConfigError: cell lr=-1: lr must be > 0, got -1.0
    """
    subgrids = grid.get(SUBGRID_KEY)
    if subgrids is not None:
        return _expand_subgrids(grid, subgrids)
    tuned_axes(grid)  # a bad ``tuned`` list is an error before anything else
    problems: list[str] = []
    axes: dict[str, list[Any]] = {}
    fixed: dict[str, Any] = {}
    for key, value in grid.items():
        if key == TUNED_KEY:
            continue
        if key_of(str(key)) == "output":
            problems.append("output: not a grid key; a sweep writes every cell's results to DIR/results.jsonl")
        elif isinstance(value, list):
            if not value:
                problems.append(f"{key}: an axis needs at least one value, got []")
            elif any(isinstance(v, (list, dict)) for v in value):
                problems.append(f"{key}: an axis lists scalars, got {value!r}")
            elif len({json.dumps(v) for v in value}) != len(value):
                problems.append(f"{key}: the axis repeats a value: {value!r}")
            elif len(value) > 1 and key_of(str(key)) in PLACEMENT_KEYS:
                problems.append(
                    f"{key}: a placement key (how a run executes, not what it computes) cannot be an axis: cell "
                    f"ids leave it out, so its {len(value)} values would run one cell; fix it to one value, or "
                    "run one sweep per value, each into its own folder"
                )
            else:
                axes[key] = value
        elif isinstance(value, dict):
            problems.append(f"{key}: must be a scalar (fixed) or a list (an axis), got a table")
        else:
            fixed[key] = value
    if problems:
        raise ConfigError("\n".join(problems))
    cells, seen = [], {}
    for combo in itertools.product(*axes.values()):
        chosen = dict(zip(axes, combo))
        try:
            cells.append(RunConfig.from_mapping({**fixed, **chosen}))
        except ConfigError as err:
            for line in str(err).splitlines():
                seen.setdefault(line, _label(chosen))
    if seen:
        raise ConfigError("\n".join(f"cell {label}: {line}" for line, label in seen.items()))
    labels: dict[str, str] = {}
    for combo, cfg in zip(itertools.product(*axes.values()), cells):
        label = _label(dict(zip(axes, combo)))
        first = labels.setdefault(cell_id(cfg), label)
        if first != label:
            problems.append(f"cell {label}: the same run as cell {first} (the values are equal once read)")
    if problems:
        raise ConfigError("\n".join(problems))
    return cells


def _expand_subgrids(grid: Mapping[str, Any], subgrids: Any) -> list[RunConfig]:
    if not isinstance(subgrids, list) or not subgrids or not all(isinstance(g, dict) for g in subgrids):
        raise ConfigError(f"{SUBGRID_KEY}: sub-grids are a non-empty array of tables ([[{SUBGRID_KEY}]] in TOML)")
    tuned_axes(grid)
    top = {k: v for k, v in grid.items() if k not in (SUBGRID_KEY, TUNED_KEY)}
    cells: dict[str, RunConfig] = {}
    problems: list[str] = []
    for number, sub in enumerate(subgrids, start=1):
        if SUBGRID_KEY in sub or TUNED_KEY in sub:
            problems.append(f"{SUBGRID_KEY} {number}: a sub-grid cannot hold '{SUBGRID_KEY}' or '{TUNED_KEY}' (top level only)")
            continue
        try:
            for cfg in expand_grid({**top, **sub}):
                cells.setdefault(cell_id(cfg), cfg)  # a cell two sub-grids share runs once
        except ConfigError as err:
            problems += [f"{SUBGRID_KEY} {number}: {line}" for line in str(err).splitlines()]
    if problems:
        raise ConfigError("\n".join(problems))
    return list(cells.values())


def _all_axes(grid: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Run key (dashed) → its values in grid order, over the top level and every sub-grid."""
    out: dict[str, list[Any]] = {}
    layers = [grid, *(g for g in grid.get(SUBGRID_KEY) or () if isinstance(g, dict))]
    for layer in layers:
        for key, value in layer.items():
            if key in (TUNED_KEY, SUBGRID_KEY):
                continue
            values = out.setdefault(key_of(str(key)), [])
            for v in value if isinstance(value, list) else [value]:
                if v not in values:
                    values.append(v)
    return out


def tuned_axes(grid: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The grid's tuned axes: run key → its values in grid order (empty without ``tuned``).

    A tuned axis is one the report chooses per strategy and setting, maximising the worst case
    over the grid's attacks of the final **validation** accuracy (so the cells need
    ``validation-size`` > 0; :func:`run_sweep` checks it), never the test accuracy.

    Raises
    ------
    ConfigError
        ``tuned`` is not a list of names, names a key that is not a run key, or a key the grid does not set.

    Examples
    --------
    >>> tuned_axes({"tuned": ["lr"], "lr": [0.1, 0.3], "validation-size": 500})
    {'lr': [0.1, 0.3]}
    >>> tuned_axes({"tuned": ["strategy"], "strategy": ["gmd", "cmd"]})
    Traceback (most recent call last):
    ...
    fedrobust.core.errors.ConfigError: tuned: 'strategy' is what the report compares; it cannot be tuned
    """
    names = grid.get(TUNED_KEY, [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{TUNED_KEY}: a list of run keys, e.g. tuned = [\"lr\"], got {names!r}")
    axes = _all_axes(grid)
    known = set(RunConfig().to_dict())
    out: dict[str, list[Any]] = {}
    for name in names:
        key = key_of(name)
        if key in COMPARED_KEYS:
            raise ConfigError(f"{TUNED_KEY}: {name!r} is what the report compares; it cannot be tuned")
        if key not in known:
            raise ConfigError(f"{TUNED_KEY}: {name!r} is not a run key")
        if key not in axes:
            raise ConfigError(f"{TUNED_KEY}: the grid does not set {name!r}; give it a list of candidate values")
        out[key] = axes[key]
    return out


def read_tuning(path: str | Path) -> dict[str, list[Any]]:
    """The tuned axes a sweep recorded (``DIR/tuning.json``; ``path`` is the folder or its
    ``results.jsonl``); empty when the sweep tuned nothing."""
    path = Path(path)
    folder = path if path.is_dir() or not path.suffix else path.parent
    file = folder / TUNING_FILE
    if not file.exists():
        return {}
    data = json.loads(file.read_text(encoding="utf-8"))
    return {str(k): list(v) for k, v in dict(data.get("tuned", {})).items()}


def grid_warnings(grid: Mapping[str, Any], cells: Sequence[RunConfig], name: str = "the grid") -> list[str]:
    """Doubtful settings of a sweep, one line each: ``name`` sets no key at all (the sweep runs
    one cell of defaults), then every distinct :func:`~fedrobust.config.config_warnings` line of
    the cells, naming the first cell it comes from and how many others share it.

    Examples
    --------
    >>> grid = {"strategy": "krum", "krum-f": 5, "seed": [0, 1]}
    >>> grid_warnings(grid, expand_grid(grid))
    ['cell seed=0 (and 1 more): krum-f=5, capped to f=3: Krum needs 2f + 2 < n = clients-per-round=10']
    >>> grid_warnings({}, expand_grid({}), "grid.toml")
    ['grid.toml sets no run key: the sweep runs one cell with every default']
    """
    from ..config import config_warnings

    out = [f"{name} sets no run key: the sweep runs one cell with every default"] if not grid else []
    axes = [k for k, v in _all_axes(grid).items() if len(v) > 1]
    first: dict[str, tuple[str, int]] = {}
    for cfg in cells:
        values = cfg.to_dict()
        label = _label({k: values.get(k) for k in axes})
        for line in config_warnings(cfg):
            where, count = first.get(line, (label, 0))
            first[line] = (where, count + 1)
    for line, (label, count) in first.items():
        more = f" (and {count - 1} more)" if count > 1 else ""
        out.append(f"cell {label}{more}: {line}" if axes else line)
    return out


#: Run keys that change where or how a run executes but not its results, so not a cell's identity.
PLACEMENT_KEYS = placement_keys()


def cell_id(config: RunConfig) -> str:
    """A stable id of a cell: the first 16 hex digits of the SHA-256 of its settings as sorted JSON.

    The settings are the run keys whose value differs from the default, other than
    :data:`PLACEMENT_KEYS`: the id changes when any setting that affects the results does, and stays
    the same when a later fedrobust version adds a run key (with a default that keeps the old
    behaviour), so finished cells are not recomputed after an upgrade.
    """
    defaults = RunConfig().to_dict()
    values = {k: v for k, v in config.to_dict().items() if k not in PLACEMENT_KEYS and v != defaults.get(k)}
    text = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def read_sweep(path: str | Path) -> list[dict[str, Any]]:
    """The finished cells of a sweep: the records of ``results.jsonl`` (``path`` is it or its folder).

    A missing file reads as no cells. A last line that is cut short or not valid JSON (the writer
    was killed mid-line) is ignored; a malformed line before it raises ValueError naming its line
    number. A cell recorded twice keeps its last well-formed record.

    Raises
    ------
    ValueError
        One line per cell whose only records are malformed (:func:`~fedrobust.experiments.cellrecord.record_problem`:
        no ``results``, a non-numeric accuracy, ...), naming the file, the line and the field.
    """
    path = _results_path(Path(path))
    records, _, malformed = _read(path)
    if malformed:
        raise ValueError("\n".join(
            f"{path}:{number}: cell {ident}: {problem}; rerun the sweep to run that cell again, or delete the line"
            for ident, (number, problem) in malformed.items()
        ))
    return list(records.values())


def _results_path(path: Path) -> Path:
    return path / RESULTS_FILE if path.is_dir() or not path.suffix else path


def _read(path: Path) -> tuple[dict[str, dict[str, Any]], int, dict[str, tuple[int, str]]]:
    """Finished records by cell id, the byte length of the file's well-formed part, and the cells
    whose only records are malformed (cell id → (line number, problem))."""
    path = _results_path(path)
    if not path.exists():
        return {}, 0, {}
    chunks = path.read_bytes().splitlines(keepends=True)
    records: dict[str, dict[str, Any]] = {}
    malformed: dict[str, tuple[int, str]] = {}
    offset = good = 0
    for number, chunk in enumerate(chunks, start=1):
        offset += len(chunk)
        if chunk.strip():
            try:
                record = json.loads(chunk)
                if not isinstance(record, dict) or not isinstance(record.get("cell"), str):
                    raise ValueError("not a cell record")
            except ValueError as err:
                if number == len(chunks):
                    break
                raise ValueError(f"{path}:{number}: malformed record ({err}); fix or delete that line") from None
            problem = record_problem(record)
            if problem is None:
                records[record["cell"]] = record
            else:
                malformed[record["cell"]] = (number, problem)
        good = offset
    return records, good, {ident: where for ident, where in malformed.items() if ident not in records}


def _repair(path: Path) -> tuple[dict[str, dict[str, Any]], dict[str, tuple[int, str]]]:
    """Drop a cut-short last line and end the file with a newline; return the finished records and
    the malformed ones (see :func:`_read`)."""
    done, good, malformed = _read(path)
    if path.exists():
        with path.open("r+b") as fh:
            fh.truncate(good)
            if good:
                fh.seek(good - 1)
                if fh.read(1) != b"\n":
                    fh.write(b"\n")
    return done, malformed


def simulate_cell(config: RunConfig, on_round: Callable[[RoundRecord], None]) -> dict[str, Any]:
    """The default cell runner: :func:`fedrobust.simulate` on Flower's simulation engine, no own bar."""
    from ..run.simulation import simulate

    return simulate(config, progress=False, on_round=on_round, warn=False)  # grid_warnings reports them


def inprocess_cell(config: RunConfig, on_round: Callable[[RoundRecord], None]) -> dict[str, Any]:
    """A cell runner without Ray: :func:`fedrobust.run.inprocess.run_inprocess` (same strategy and clients)."""
    from ..run.inprocess import run_inprocess

    return run_inprocess(config, on_round=on_round, warn=False)  # grid_warnings reports them


# The real Ray-engine runner (tests replace the module's simulate_cell with stand-ins): only it
# gets a Ray head of its own for the sweep.
_RAY_CELL = simulate_cell

ENGINES: dict[str, CellRunner] = {"ray": simulate_cell, "inprocess": inprocess_cell}
"""The cell runners by ``fedrobust sweep --engine`` name."""


def _num_classes(config: RunConfig) -> int | None:
    from ..run.build import load_splits

    try:
        return int(load_splits(config).num_classes)
    except Exception:  # noqa: BLE001 - only an annotation for the report's divergence rule
        return None


def _append(path: Path, record: Mapping[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, separators=(",", ":")) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def run_sweep(
    cells: Sequence[RunConfig] | Mapping[str, Any],
    output_dir: str | Path,
    *,
    run_cell: CellRunner | None = None,
    preflight: bool = True,
    progress: bool = True,
    tuned: Mapping[str, Sequence[Any]] | None = None,
    jobs: int = 1,
    max_cells: int | None = None,
    ray_address: str | None = None,
) -> SweepSummary:
    """Run every cell not yet in ``output_dir/results.jsonl`` and append each as it finishes.

    Parameters
    ----------
    cells : sequence of RunConfig, or a grid mapping
        The cells (a mapping is expanded and validated by :func:`expand_grid` first).
    output_dir : str or Path
        The sweep's folder (created when missing).
    run_cell : callable, optional
        ``run_cell(config, on_round) -> results document``; default :func:`simulate_cell`.
    preflight : bool
        Before running anything, check every pending cell with
        :func:`fedrobust.run.simulation.check_runnable` (dataset files, device, partitioner).
    progress : bool
        Show a rich progress bar over the cells, with a second bar over the current cell's rounds.
    tuned : mapping, optional
        The tuned axes (:func:`tuned_axes`; taken from ``cells`` when it is a grid mapping), written
        to ``output_dir/tuning.json`` for the report. Every cell must then hold out a validation
        split (``validation-size`` > 0).
    jobs : int
        Cells run at once, each in its own worker process with ``cpu_count // jobs`` torch threads
        (so the jobs do not oversubscribe the cores). ``run_cell`` must then be a module-level
        function (:data:`ENGINES`' ``inprocess``; Flower's Ray engine starts a Ray instance of its
        own per process, so it runs one cell at a time). The file gets the same records in the
        same order as with one job: a finished cell waits for the cells before it, and an
        interrupt or error writes every finished cell first.
    max_cells : int, optional
        Run at most this many of the unfinished cells, in grid order, and leave the rest for a rerun
        (a smoke test of a grid, or a long sweep split into sessions); ``None``: all of them.
    ray_address : str, optional
        A running Ray cluster (``HOST:PORT``). With Flower's Ray engine (the default runner) every
        cell attaches to it (its run key ``ray-address``). With the in-process engine
        (:func:`inprocess_cell`) each cell is one Ray task on it, with the cell's ``num-cpus`` and
        ``num-gpus`` as the task's resources and as many at once as the cluster fits (at most
        ``jobs`` when ``jobs`` > 1). Without it, a Ray-engine sweep of two or more cells starts one
        private Ray head for the whole sweep (:func:`fedrobust.run.ray_head.local_ray_head`) rather
        than one Ray instance per cell. Either way the records are those of a sequential sweep, in
        grid order, and their configs keep each cell's own ``ray-address``.

    Returns
    -------
    SweepSummary
        Cells in the grid, skipped (already finished), run, and failed (a cell whose runner raised
        is reported and left out of the file; the sweep goes on with the next cell).

    Raises
    ------
    ConfigError
        An invalid grid, a folder that cannot be written (checked before anything runs), or (with
        ``preflight``) a cell that cannot run here.
    KeyboardInterrupt
        Passed on at once; every cell finished before it is already in the file.
    """
    if isinstance(cells, Mapping):
        tuned = tuned_axes(cells) if tuned is None else tuned
        cells = expand_grid(cells)
    tuned = {key_of(str(k)): list(v) for k, v in (tuned or {}).items()}
    if tuned and any(int(getattr(c, "validation_size", 0)) <= 0 for c in cells):
        raise ConfigError(
            f"tuned = {list(tuned)}: the report chooses tuned values on the validation split, never the test "
            "split; set validation-size > 0 (e.g. validation-size = 500) for every cell"
        )
    if not all(isinstance(c, RunConfig) for c in cells):
        raise TypeError("cells must be RunConfig objects or one grid mapping")
    runner = simulate_cell if run_cell is None else run_cell
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ConfigError(f"jobs must be an integer >= 1, got {jobs!r}")
    if jobs > 1 and runner is simulate_cell:
        raise ConfigError("jobs > 1 runs cells in worker processes with the in-process engine (--engine inprocess); "
                          "Flower's Ray engine runs one cell at a time")
    if ray_address:
        RunConfig(ray_address=ray_address)  # the run key's own check of HOST:PORT
    out_dir = Path(output_dir)
    check_output_dir(out_dir, "sweep folder")
    path = out_dir / RESULTS_FILE
    tuning = out_dir / TUNING_FILE
    before = read_tuning(out_dir)
    if tuning.exists() and set(before) != set(tuned):
        # The folder's finished cells were chosen among on other axes; mixing the two would
        # mislead the report, and deleting the file would lose how the earlier sweep was meant.
        raise ConfigError(
            f"{out_dir} holds a sweep with tuned = {sorted(before)}, and this grid has tuned = {sorted(tuned)}; "
            f"sweep into another folder (or delete {tuning} to drop the earlier choice)"
        )
    if tuned:
        # A resumed grid may have gained candidate values: keep the earlier ones first, in order.
        merged = {k: list(before.get(k, [])) + [v for v in values if v not in before.get(k, [])]
                  for k, values in tuned.items()}
        tuning.write_text(json.dumps({"tuned": merged}, indent=1) + "\n", encoding="utf-8")
    done, malformed = _repair(path)
    unique = dict(zip((cell_id(c) for c in cells), cells))
    # Each cell writes its tensorboard log into FOLDER/<cell id> (a placement key: the ids stay).
    pending = [(ident, cfg.replace(tensorboard=str(Path(cfg.tensorboard) / ident)) if cfg.tensorboard else cfg)
               for ident, cfg in unique.items() if ident not in done]
    if max_cells is not None:
        if not isinstance(max_cells, int) or isinstance(max_cells, bool) or max_cells < 1:
            raise ConfigError(f"max-cells must be an integer >= 1, got {max_cells!r}")
    left = max(0, len(pending) - max_cells) if max_cells is not None else 0
    pending = pending[: len(pending) - left]
    skipped = len(unique) - len(pending) - left
    if preflight:
        _preflight([c for _, c in pending])
    failed: dict[str, str] = {}
    ran = 0
    with _progress(len(unique) - left, skipped, enabled=progress) as bar:
        for ident, (number, problem) in malformed.items():
            if ident in unique:
                bar.log(f"cell {ident}: its record on {path}:{number} is malformed ({problem}); running it again")
        if ray_address and runner is not simulate_cell and pending:
            ran = _run_collected(pending, _ray_tasks(pending, runner, ray_address, jobs), path, bar, failed)
            return SweepSummary(path, len(unique), skipped, ran, failed, left)
        if jobs > 1 and pending:
            ran = _run_collected(pending, _worker_processes(pending, runner, jobs), path, bar, failed)
            return SweepSummary(path, len(unique), skipped, ran, failed, left)
        with contextlib.ExitStack() as stack:
            attach = ray_address or None
            if runner is _RAY_CELL and attach is None and sum(not c.ray_address for _, c in pending) > 1:
                from ..run.ray_head import local_ray_head

                attach = stack.enter_context(local_ray_head())
            ran = _run_sequential(pending, runner, attach, path, bar, failed)
    return SweepSummary(path, len(unique), skipped, ran, failed, left)


def _run_sequential(
    pending: Sequence[tuple[str, RunConfig]], runner: CellRunner, attach: str | None, path: Path, bar: _Bar,
    failed: dict[str, str],
) -> int:
    """Run ``pending`` one after the other, appending each; cells without a ``ray-address`` of their
    own attach to ``attach`` when given (their records keep their own config)."""
    ran = 0
    for ident, cfg in pending:
        bar.start_cell(cfg)
        try:
            run_cfg = cfg.replace(ray_address=attach) if attach and not cfg.ray_address else cfg
            results = dict(runner(run_cfg, bar.advance_round))
            if run_cfg is not cfg and isinstance(results.get("config"), Mapping):
                results["config"] = {**results["config"], "ray-address": cfg.ray_address}
        except Exception as err:  # noqa: BLE001 - one failing cell must not stop the sweep
            failed[ident] = f"{type(err).__name__}: {err}"
            bar.log(f"cell {ident} ({cfg.strategy}, {cfg.attack}, psi={cfg.byzantine_fraction}, "
                    f"seed={cfg.seed}) failed: {failed[ident]}")
            bar.end_cell()
            continue
        record = {"cell": ident, "config": cfg.to_dict(), "num_classes": _num_classes(cfg), "results": results}
        _append(path, record)
        ran += 1
        bar.end_cell()
    return ran


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    try:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    except ImportError:  # numba is optional (the 'fast' extra)
        pass


def _run_in_worker(
    runner: CellRunner, cfg: RunConfig, handover: str | None = None
) -> tuple[dict[str, Any], int | None]:
    """One cell in a worker process, on the data the sweep handed over (``handover``: see
    :class:`fedrobust.run.handover.HandoverFiles`; None: the cell loads its own)."""
    from ..run.handover import take_over

    take_over(handover, replace=True)
    return dict(runner(cfg, lambda record: None)), _num_classes(cfg)


def _ray_cell(runner: CellRunner, cfg: RunConfig) -> tuple[dict[str, Any], int | None]:
    """One cell as a Ray task: torch and numba at the task's ``num-cpus`` threads, then the runner."""
    _worker_init(max(1, int(cfg.num_cpus)))
    return _run_in_worker(runner, cfg)


#: What a source of finished cells yields: (index in pending, (results, num_classes) or the error).
Finished = Iterator[tuple[int, tuple[dict[str, Any], int | None] | BaseException]]


def _worker_processes(pending: Sequence[tuple[str, RunConfig]], runner: CellRunner, jobs: int) -> Finished:
    """Run ``pending`` in ``jobs`` spawned worker processes of ``cores // jobs`` threads each.

    The workers take the cells' splits and partitions over from this process (which has built
    them while checking the cells) instead of loading and partitioning the dataset again: files
    in a private temporary folder for the sweep (:class:`fedrobust.run.handover.HandoverFiles`),
    each written just before its first cell is submitted.
    """
    import multiprocessing
    import shutil
    import tempfile
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from ..run.handover import HandoverFiles

    threads = max(1, (os.cpu_count() or 1) // jobs)
    context = multiprocessing.get_context("spawn")  # no forked torch threads or Ray state
    folder = tempfile.mkdtemp(prefix="fedrobust-sweep-")
    try:
        files = HandoverFiles(folder)
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_worker_init, initargs=(threads,))
        try:
            futures = {pool.submit(_run_in_worker, runner, cfg, files(cfg)): i for i, (_, cfg) in enumerate(pending)}
            for future in as_completed(futures):
                error = future.exception()
                yield futures[future], (future.result() if error is None else error)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _ray_tasks(pending: Sequence[tuple[str, RunConfig]], runner: CellRunner, address: str, jobs: int) -> Finished:
    """Run ``pending`` as Ray tasks on the cluster at ``address``, each with its cell's resources;
    at most ``jobs`` in flight when ``jobs`` > 1 (else as many as the cluster schedules)."""
    import ray

    attached = not ray.is_initialized()
    if attached:
        ray.init(address=address, logging_level="ERROR")
    task = ray.remote(_ray_cell)
    limit = jobs if jobs > 1 else len(pending)
    queue = list(enumerate(pending))
    running: dict[Any, int] = {}
    try:
        while queue or running:
            while queue and len(running) < limit:
                index, (_, cfg) = queue.pop(0)
                ref = task.options(num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus).remote(runner, cfg)
                running[ref] = index
            (ref,), _ = ray.wait(list(running), num_returns=1)
            index = running.pop(ref)
            try:
                yield index, ray.get(ref)
            except Exception as err:  # noqa: BLE001 - the cell's error, as Ray passes it on
                yield index, getattr(err, "cause", None) or err
    except BaseException:
        for ref in running:
            ray.cancel(ref, force=True)
        raise
    finally:
        if attached:
            ray.shutdown()


def _run_collected(
    pending: Sequence[tuple[str, RunConfig]], finished: Finished, path: Path, bar: _Bar, failed: dict[str, str],
) -> int:
    """Append the cells ``finished`` yields in ``pending``'s order (a cell waits for those before it);
    on an interrupt or error, every finished cell is written first, even out of order."""
    done: dict[int, dict[str, Any] | None] = {}  # finished, not yet written (None: the cell failed)
    written = 0

    def flush(everything: bool) -> None:
        nonlocal written
        while written in done:  # the finished prefix, in order
            record = done.pop(written)
            if record is not None:
                _append(path, record)
            written += 1
        if everything:
            for index in sorted(done):
                record = done.pop(index)
                if record is not None:
                    _append(path, record)

    ran = 0
    try:
        for index, outcome in finished:
            ident, cfg = pending[index]
            if isinstance(outcome, BaseException):
                failed[ident] = f"{type(outcome).__name__}: {outcome}"
                bar.log(f"cell {ident} ({cfg.strategy}, {cfg.attack}, psi={cfg.byzantine_fraction}, "
                        f"seed={cfg.seed}) failed: {failed[ident]}")
                done[index] = None
            else:
                results, num_classes = outcome
                done[index] = {"cell": ident, "config": cfg.to_dict(), "num_classes": num_classes, "results": results}
                ran += 1
            flush(False)
            bar.end_cell()
    finally:
        flush(True)
    return ran


def _preflight(cells: Sequence[RunConfig]) -> None:
    from ..run.simulation import check_runnable

    problems: dict[str, str] = {}
    for cfg in cells:
        try:
            check_runnable(cfg)
        except (ValueError, TypeError) as err:
            label = f"cell {cfg.strategy}/{cfg.attack}/psi={cfg.byzantine_fraction}/seed={cfg.seed}"
            for line in str(err).splitlines():
                problems.setdefault(line, label)
    if problems:
        raise ConfigError("\n".join(f"{label}: {line}" for line, label in problems.items()))


class _Bar:
    """The sweep's progress: cells overall, and the current cell's rounds (or nothing when disabled)."""

    def __init__(self, progress: Any = None, total: int = 0, done: int = 0) -> None:
        self.progress = progress
        if progress is not None:
            self.cells = progress.add_task("sweep", total=total, completed=done)
            self.rounds = progress.add_task("cell", total=1, visible=False)

    def start_cell(self, cfg: RunConfig) -> None:
        if self.progress is not None:
            text = f"  {cfg.strategy}, {cfg.attack} psi={cfg.byzantine_fraction}, seed {cfg.seed}"
            self.progress.reset(self.rounds, total=cfg.rounds, description=text, visible=True)

    def advance_round(self, record: RoundRecord) -> None:
        if self.progress is not None:
            self.progress.advance(self.rounds)

    def end_cell(self) -> None:
        if self.progress is not None:
            self.progress.advance(self.cells)

    def log(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(text, markup=False)
        else:
            print(text, file=sys.stderr)


@contextlib.contextmanager
def _progress(total: int, done: int, enabled: bool) -> Iterator[_Bar]:
    if not enabled:
        yield _Bar()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns) as bar:
        yield _Bar(bar, total, done)
