"""The ``fedrobust`` command line.

``fedrobust run [flags] --output results.json`` runs one simulation (see :func:`fedrobust.simulate`).
Its flags are generated from :class:`~fedrobust.config.RunConfig`, so a flag is always the run-config
key with ``--`` in front (``--byzantine-fraction`` ↔ ``byzantine-fraction``); a flag left out keeps
the key's default. A user mistake prints one ``fedrobust: error:`` line per problem and exits 2.

``fedrobust sweep GRID.toml --output DIR`` runs every cell of a grid of run configs (a file, or the
name of a grid shipped with fedrobust: ``demo``, ``benchmark``, ...) and appends each to
``DIR/results.jsonl`` (rerunning it resumes; see :mod:`fedrobust.experiments.sweep`);
``fedrobust report DIR --output REPORT_DIR`` writes its tables and plots (:mod:`fedrobust.experiments.report`).
``fedrobust demo`` runs the main demo (:mod:`fedrobust.experiments.demo`); ``fedrobust new-app DIR``
writes a Flower App folder for ``flwr run DIR`` (:mod:`fedrobust.run.new_app`).
``fedrobust deploy up|down|certs ...`` runs on Flower's Deployment Engine (:mod:`fedrobust.deploy`).

Examples
--------
>>> args = build_parser().parse_args(["run", "--strategy", "mean-sgd", "--num-clients", "4"])
>>> config_values(args)
{'strategy': 'mean-sgd', 'num-clients': 4}
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from collections.abc import Sequence
from typing import Any

from .config import ConfigError, RunConfig, field_type, key_of
from .run.interrupt import exit_if_stuck

__all__ = ["main", "build_parser", "config_values"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C


def _with_choices(parser: argparse.ArgumentParser):
    """``parser.format_help`` with an epilog listing every allowed strategy, attack, dataset, ...
    (:mod:`fedrobust.catalog`), computed when the help is shown."""
    original = parser.format_help

    def format_help() -> str:
        from .catalog import catalog

        parser.epilog = "allowed values (fedrobust list describes each):\n" + "\n".join(
            f"  --{key}: {', '.join(names)}" for key, names in catalog().items())
        return original()

    return format_help


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: ``run`` with one flag per run-config key, plus ``--quiet``/``--verbose``."""
    parser = argparse.ArgumentParser(prog="fedrobust", description="Byzantine-robust federated learning on Flower.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="run one simulation on Flower's simulation engine (Ray)",
        description="Run one simulation; --output writes the config and per-round records as JSON.",
    )
    config_flags = run.add_argument_group("run configuration (the keys of [tool.flwr.app.config])")
    for f in dataclasses.fields(RunConfig):
        _add_flag(config_flags, f)
    run.formatter_class = argparse.RawDescriptionHelpFormatter
    run.format_help = _with_choices(run)  # the registries (and torch) load only for --help
    run.add_argument("--quiet", action="store_true", help="no progress bar and no summary line")
    run.add_argument("--verbose", action="store_true", help="show Flower's INFO logs")
    sweep = commands.add_parser(
        "sweep",
        help="run a grid of simulations, resumably",
        description="Run every cell of GRID.toml (run-config keys; a list is an axis, a scalar is fixed) and "
        "append each finished cell to DIR/results.jsonl; a rerun skips finished cells.",
    )
    sweep.add_argument("grid", metavar="GRID.toml",
                       help="the grid: a TOML file of run-config keys, or the name of a grid shipped with fedrobust "
                       "(fedrobust list shows them: demo, benchmark, ...)")
    sweep.add_argument("--output", required=True, metavar="DIR", help="the sweep's folder")
    sweep.add_argument("--quiet", action="store_true", help="no progress bars")
    sweep.add_argument("--max-cells", type=int, default=None, metavar="N",
                       help="run at most N unfinished cells, in grid order; a rerun runs the rest")
    sweep.add_argument("--ray-address", default=None, metavar="HOST:PORT",
                       help="a running Ray cluster: --engine ray attaches every cell to it; --engine inprocess runs "
                       "each cell as one Ray task there, with the cell's num-cpus and num-gpus (at most --jobs at "
                       "once when given). Without it a ray-engine sweep starts one Ray head for all its cells")
    sweep.add_argument("--jobs", type=int, default=1, metavar="N",
                       help="cells run at once, each in a worker process with cores/N threads (--engine inprocess; "
                       "the same records in the same order as one job) [1]")
    sweep.add_argument(
        "--engine", choices=("ray", "inprocess"), default="ray",
        help="ray: Flower's simulation engine (default); inprocess: the same strategy and clients in this "
        "process, one client after the other, without Ray's overhead (fedrobust.run.inprocess)",
    )
    demo = commands.add_parser(
        "demo", help="the main demo: FedAvg and three robust rules, clean and under attack (about 5 min)",
        description="Sweep the shipped 'demo' grid (4 strategies x clean / 2 of 10 clients sending -100 x their "
        "update, mnist5k, 40 rounds), then print its tables and write its report and plots.",
    )
    demo.add_argument("--output", default="results/demo", help="the sweep's folder (report in OUTPUT/report) "
                      "[results/demo]")
    demo.add_argument("--rounds", type=int, default=None, help="server rounds per run [the grid's: 40]")
    demo.add_argument("--engine", choices=("ray", "inprocess"), default="ray",
                      help="ray: Flower's simulation engine (default); inprocess: no Ray")
    demo.add_argument("--max-cells", type=int, default=None, metavar="N",
                      help="run at most N unfinished cells; a rerun runs the rest")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    new_app = commands.add_parser(
        "new-app", help="write a Flower App folder that `flwr run DIR` runs",
        description="Write DIR/pyproject.toml: a Flower App whose components are fedrobust's, with every run key "
        "in [tool.flwr.app.config] (the flags given here, the defaults otherwise). Then: flwr run DIR.",
    )
    new_app.add_argument("folder", metavar="DIR", help="the App's folder (created; must not hold a pyproject.toml)")
    new_app.add_argument("--name", default=None, help="the App's name [the folder's name]")
    app_flags = new_app.add_argument_group("run configuration written into [tool.flwr.app.config]")
    for f in dataclasses.fields(RunConfig):
        _add_flag(app_flags, f)
    new_app.formatter_class = argparse.RawDescriptionHelpFormatter
    new_app.format_help = _with_choices(new_app)
    commands.add_parser(
        "list", help="the strategies, attacks, datasets, models, partitioners and compressors, one line each",
        description="Every name a run key takes, with one line of description each (registered ones included).",
    )
    report = commands.add_parser(
        "report",
        help="tables and plots of a sweep",
        description="Write REPORT_DIR/report.md (final accuracy tables: attack x psi by strategy, mean +- std "
        "over seeds) and PNG plots from DIR/results.jsonl.",
    )
    report.add_argument("sweep_dir", metavar="DIR", help="a sweep's folder (or its results.jsonl)")
    report.add_argument("--output", required=True, metavar="REPORT_DIR", help="where to write the report")
    report.add_argument("--no-plots", action="store_true",
                        help="tables and heatmaps only, without the per-setting curves")
    # Everything after `deploy` (--help included) goes to fedrobust.deploy's own parser.
    deploy = commands.add_parser(
        "deploy", add_help=False, prefix_chars="\0",
        help="SuperLink + SuperNodes on Flower's Deployment Engine (up, down, certs; fedrobust deploy --help)",
    )
    deploy.add_argument("args", nargs=argparse.REMAINDER, help="the arguments of python -m fedrobust.deploy")
    return parser


def _add_flag(group: argparse._ArgumentGroup, f: dataclasses.Field) -> None:
    kind = field_type(f)
    help_text = f.metadata["help"]
    choices = f.metadata.get("choices")
    if isinstance(choices, tuple):  # registries (callables) are checked by RunConfig, not listed here
        help_text += f" ({'|'.join(choices)})"
    common: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": f"{help_text} [{f.default!r}]"}
    if kind is bool:
        group.add_argument(f"--{key_of(f.name)}", action=argparse.BooleanOptionalAction, **common)
    else:
        group.add_argument(f"--{key_of(f.name)}", type=kind, metavar=kind.__name__.upper(), **common)


def config_values(args: argparse.Namespace) -> dict[str, Any]:
    """The run-config keys given on the command line (by key name)."""
    names = {f.name for f in dataclasses.fields(RunConfig)}
    return {key_of(k): v for k, v in vars(args).items() if k in names}


def _errors(err: BaseException) -> int:
    for line in str(err).splitlines() or [type(err).__name__]:
        print(f"fedrobust: error: {line}", file=sys.stderr)
    return EXIT_USAGE


def _interrupted(err: KeyboardInterrupt, rounds: int) -> int:
    """The ``run`` command's report of a Ctrl-C: rounds done and where their results are."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run is stopped already; exit now
    done = getattr(err, "rounds_done", 0)
    path = getattr(err, "path", None)
    where = f"; their results are in {path} (marked interrupted)" if path else ""
    print(f"fedrobust: interrupted after {done} of {rounds} rounds{where}", file=sys.stderr)
    exit_if_stuck(EXIT_INTERRUPTED)
    return EXIT_INTERRUPTED
def _warnings(lines: Sequence[str]) -> None:
    for line in lines:
        print(f"fedrobust: warning: {line}", file=sys.stderr)


def _sweep_interrupted(output: str) -> int:
    """The ``sweep`` and ``demo`` commands' report of a Ctrl-C: where the finished cells are."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the sweep is stopped already; exit now
    print(f"fedrobust: interrupted; finished cells are in {output}; rerun to resume", file=sys.stderr)
    exit_if_stuck(EXIT_INTERRUPTED)
    return EXIT_INTERRUPTED


def _sweep(args: argparse.Namespace) -> int:
    from .experiments.sweep import ENGINES, expand_grid, grid_warnings, load_grid, run_sweep, tuned_axes

    try:
        grid = load_grid(args.grid)
    except OSError as err:
        return _errors(ConfigError(f"{args.grid}: {err.strerror}" if err.strerror else str(err)))
    except ConfigError as err:
        return _errors(err)
    try:
        cells = expand_grid(grid)
        _warnings(grid_warnings(grid, cells, args.grid))
        runner = None if args.engine == "ray" else ENGINES[args.engine]
        summary = run_sweep(cells, args.output, run_cell=runner, progress=not args.quiet, tuned=tuned_axes(grid),
                            jobs=args.jobs, max_cells=args.max_cells, ray_address=args.ray_address)
    except OSError as err:  # the sweep folder's checks passed, so something went wrong while writing
        return _errors(ConfigError(f"{err.filename or args.output}: {err.strerror or err}"))
    except (ConfigError, ValueError, TypeError) as err:
        return _errors(err)
    except KeyboardInterrupt:
        return _sweep_interrupted(args.output)
    for ident, message in summary.failed.items():
        print(f"fedrobust: cell {ident} failed: {message}", file=sys.stderr)
    if not args.quiet:
        left = f", {summary.left} left for a rerun" if summary.left else ""
        print(f"{summary.cells} cells: {summary.skipped} already done, {summary.ran} run, "
              f"{len(summary.failed)} failed{left}; results in {summary.path}")
    return 1 if summary.failed else 0


def _report(args: argparse.Namespace) -> int:
    from .experiments.report import write_report

    try:
        written = write_report(args.sweep_dir, args.output, plots=not args.no_plots)
    except (OSError, ValueError) as err:
        return _errors(err)
    print(f"{written[0]} and {len(written) - 1} figures")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .experiments.demo import run_demo

    try:
        return run_demo(args.output, rounds=args.rounds, engine=args.engine, max_cells=args.max_cells,
                        progress=not args.quiet)
    except OSError as err:
        return _errors(ConfigError(f"{err.filename or args.output}: {err.strerror or err}"))
    except (ConfigError, ValueError, TypeError) as err:
        return _errors(err)
    except KeyboardInterrupt:
        return _sweep_interrupted(args.output)


def _new_app(args: argparse.Namespace) -> int:
    from .run.new_app import write_app

    try:
        written = write_app(args.folder, config_values(args), name=args.name)
    except OSError as err:
        return _errors(ConfigError(f"{err.filename or args.folder}: {err.strerror or err}"))
    except ConfigError as err:
        return _errors(err)
    print(f"wrote {written}; run it with: flwr run {args.folder}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fedrobust`` script; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "sweep":
        return _sweep(args)
    if args.command == "demo":
        return _demo(args)
    if args.command == "new-app":
        return _new_app(args)
    if args.command == "list":
        from .catalog import format_catalog

        print(format_catalog())
        return 0
    if args.command == "deploy":
        from .deploy import main as deploy_main

        return deploy_main(args.args, prog="fedrobust deploy")
    if args.command == "report":
        return _report(args)
    try:
        cfg = RunConfig.from_mapping(config_values(args))
        from .run.simulation import check_runnable

        check_runnable(cfg)
    except (ConfigError, ValueError, TypeError) as err:
        return _errors(err)
    from .config import config_warnings
    from .run.simulation import simulate

    _warnings(config_warnings(cfg))
    try:
        results = simulate(cfg, progress=not args.quiet, verbose=args.verbose, warn=False)  # printed above
    except KeyboardInterrupt as err:
        return _interrupted(err, cfg.rounds)
    if not args.quiet:
        last = results["rounds"][-1]
        where = f"; results in {cfg.output}" if cfg.output else ""
        print(f"round {last['round']}: accuracy {last['accuracy']:.4f}, loss {last['loss']:.4f}{where}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
