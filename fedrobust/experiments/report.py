"""Tables and plots of a sweep: :func:`write_report` turns ``results.jsonl`` into markdown and PNGs.

The tables have the shape of Table 2 of the BGMD paper: one row per attack × ψ
(``byzantine-fraction``), one column per strategy, and in each cell the final test accuracy
(in %) as mean ± standard deviation over the seeds (sample std, ``ddof=1``; a single seed shows the
mean alone). Runs that differ in any other key (dataset, lr, rho, ...) go into separate tables,
headed by those keys.

A run **diverged** when its final loss or accuracy is not finite, or when its final accuracy is at
most chance + 0.02 (chance = 1 / number of classes, recorded by the sweep; a record without it is
judged by the non-finite rule alone). A cell whose seeds all diverged shows "–"; a cell where
only some did shows the mean ± std of the others followed by ``(k/n diverged)``.

Then the benchmark protocol (:mod:`fedrobust.experiments.selection`): a table per context of
each strategy's **worst case over attacks** per heterogeneity and ψ (the worst attack named), with
tuned axes (a grid's ``tuned`` key, recorded in ``tuning.json``) at the values chosen on the
validation split (listed in a second table, with the per-attack test accuracy at those values in a
third), and one heatmap figure per strategy of final accuracy over ψ × heterogeneity, one panel per
attack and one for the worst case (:mod:`fedrobust.experiments.heatmap`).

The plots (one set per table and attack × ψ setting, one line per strategy, the mean over seeds
with the standard deviation shaded, each strategy in the same colour in every plot):
test accuracy vs round, vs training seconds (cumulative ``round_seconds``, which leave out the
start-up before round 1, recorded as ``startup_seconds``), vs megabytes
uploaded (cumulative ``bytes_up`` / 10^6), and BGMD's relative residual 1 − ξ vs round where the
records hold ``relative_residual``.

Examples
--------
>>> record = {"config": {"strategy": "bgmd"}, "num_classes": 10, "results": {"rounds": [
...     {"round": 1, "accuracy": 0.5, "loss": 1.0}, {"round": 2, "accuracy": 0.11, "loss": 2.0}]}}
>>> diverged(record)
True
>>> format_cell([0.9, 0.92], diverged_runs=0)
'91.00 ± 1.41'
>>> format_cell([], diverged_runs=3)
'–'
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import placement_keys
from ..core.paths import check_output_dir
from .heatmap import heatmap_panels, plot_heatmaps
from .selection import Choice, choose_tuned, heterogeneity, heterogeneity_order, worst_case
from .sweep import read_sweep, read_tuning

__all__ = [
    "CHANCE_MARGIN",
    "DASH",
    "diverged",
    "format_cell",
    "group_records",
    "markdown_tables",
    "worst_case_tables",
    "write_report",
]

#: A final accuracy at most chance + this margin counts as diverged.
CHANCE_MARGIN = 0.02
#: What a table shows for a cell whose runs all diverged.
DASH = "–"

# Keys that never split tables: the table's own axes, the seeds averaged over, and where output goes.
_TABLE_KEYS = ("strategy", "attack", "attack-params", "byzantine-fraction", "seed", "output")
# Keys that change where a run ran, not what it computed.


def _final(record: Mapping[str, Any], field: str) -> float:
    rounds = record["results"]["rounds"]
    value = rounds[-1].get(field) if rounds else None
    return math.nan if value is None else float(value)


def diverged(record: Mapping[str, Any]) -> bool:
    """Whether a sweep record's run diverged (the rule of the module docstring)."""
    acc, loss = _final(record, "accuracy"), _final(record, "loss")
    if not (math.isfinite(acc) and math.isfinite(loss)):
        return True
    classes = record.get("num_classes")
    return bool(classes) and acc <= 1.0 / classes + CHANCE_MARGIN


def format_cell(accuracies: Sequence[float], diverged_runs: int) -> str:
    """A table cell: mean ± std in % of the finished runs, "–" when none finished."""
    if not accuracies:
        return DASH
    values = 100.0 * np.asarray(accuracies, dtype=float)
    text = f"{values.mean():.2f}"
    if len(values) > 1:
        text += f" ± {values.std(ddof=1):.2f}"
    if diverged_runs:
        text += f" ({diverged_runs}/{diverged_runs + len(values)} diverged)"
    return text


def group_records(records: Iterable[Mapping[str, Any]]) -> dict[tuple[tuple[str, Any], ...], list[Mapping[str, Any]]]:
    """Records by table: the key is the ``(key, value)`` pairs, other than the table's axes and
    placement keys, that vary across ``records`` (empty when only the table axes vary)."""
    records = list(records)
    keys = sorted({k for r in records for k in r["config"]} - set(_TABLE_KEYS) - set(placement_keys()))
    varying = [k for k in keys if len({repr(r["config"].get(k)) for r in records}) > 1]
    # The partitioner and its Dirichlet α are one thing, the heterogeneity ('iid', 'dirichlet α=0.3'):
    # an IID run's unused α must not split or title a table.
    split = {"partitioner", "dirichlet-alpha"}
    by_heterogeneity = bool(split & set(varying)) and len({heterogeneity(r["config"]) for r in records}) > 1
    varying = [k for k in varying if k not in split]
    groups: dict[tuple[tuple[str, Any], ...], list[Mapping[str, Any]]] = defaultdict(list)
    for r in records:
        het = (("heterogeneity", heterogeneity(r["config"])),) if by_heterogeneity else ()
        groups[het + tuple((k, r["config"].get(k)) for k in varying)].append(r)
    return dict(groups)


def _setting(record: Mapping[str, Any]) -> tuple[str, str, float]:
    cfg = record["config"]
    return cfg.get("attack", "none"), cfg.get("attack-params", ""), float(cfg.get("byzantine-fraction", 0.0))


def _setting_label(attack: str, params: str) -> str:
    return f"{attack} ({params})" if params else attack


def _settings(records: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, float]]:
    """The attack × ψ settings: no attack first, then attacks in order of appearance, ψ ascending."""
    attacks = list(dict.fromkeys(_setting(r)[:2] for r in records))
    return sorted({_setting(r) for r in records}, key=lambda s: (s[0] != "none", attacks.index(s[:2]), s[2]))


def markdown_tables(records: Iterable[Mapping[str, Any]]) -> str:
    """Final test accuracy tables (markdown), one per group of :func:`group_records`."""
    parts = []
    for group, members in group_records(records).items():
        strategies = list(dict.fromkeys(r["config"]["strategy"] for r in members))
        cells: dict[tuple[Any, ...], list[Mapping[str, Any]]] = defaultdict(list)
        for r in members:
            cells[(*_setting(r), r["config"]["strategy"])].append(r)
        title = ", ".join(f"{k}={v}" for k, v in group) or "all runs"
        parts.append(_accuracy_table(f"Final test accuracy (%): {title}", strategies, _settings(members),
                                     lambda setting, s: cells.get((*setting, s), [])))
    return "\n\n".join(parts) + "\n"


def _accuracy_table(
    title: str, strategies: Sequence[str], settings: Sequence[tuple[str, str, float]],
    runs_of: Callable[[tuple[str, str, float], str], Sequence[Mapping[str, Any]]],
) -> str:
    """One markdown table: a row per attack × ψ setting, a column per strategy, each cell the
    final accuracy of ``runs_of(setting, strategy)`` (mean ± std; the seed count in the title when
    every cell has the same, else in each cell)."""
    cells = {(setting, s): list(runs_of(setting, s)) for setting in settings for s in strategies}
    counts = {len(runs) for runs in cells.values() if runs}
    seeds = f", mean ± std over {counts.pop()} seed(s)" if len(counts) == 1 else ""
    lines = [f"### {title}{seeds}", "", "| attack | ψ | " + " | ".join(strategies) + " |",
             "|---|---:|" + "---:|" * len(strategies)]
    for setting in settings:
        row = []
        for s in strategies:
            runs = cells[(setting, s)]
            if not runs:
                row.append("")
                continue
            ok = [_final(r, "accuracy") for r in runs if not diverged(r)]
            row.append(format_cell(ok, len(runs) - len(ok)) + ("" if seeds else f" [n={len(runs)}]"))
        attack, params, psi = setting
        lines.append(f"| {_setting_label(attack, params)} | {psi:g} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def _curve(runs: Sequence[Mapping[str, Any]], field: str, cumulative: bool = False, scale: float = 1.0) -> np.ndarray:
    """The mean over runs of a per-round field (NaN where absent), truncated to the shortest run."""
    return _mean(_curves(runs, field, cumulative, scale))


def _mean(stacked: np.ndarray) -> np.ndarray:
    out = np.full(stacked.shape[1], math.nan)
    seen = ~np.isnan(stacked).all(axis=0)
    out[seen] = np.nanmean(stacked[:, seen], axis=0)
    return out


def _spread(stacked: np.ndarray) -> np.ndarray:
    """Sample std over runs per round (NaN with fewer than two values)."""
    out = np.full(stacked.shape[1], math.nan)
    enough = (~np.isnan(stacked)).sum(axis=0) > 1
    out[enough] = np.nanstd(stacked[:, enough], axis=0, ddof=1)
    return out


def _curves(runs: Sequence[Mapping[str, Any]], field: str, cumulative: bool = False, scale: float = 1.0) -> np.ndarray:
    """(runs, rounds) values of a per-round field (NaN where absent), truncated to the shortest run."""
    length = min(len(r["results"]["rounds"]) for r in runs)
    rows = []
    for r in runs:
        vals = [rec.get(field) for rec in r["results"]["rounds"][:length]]
        row = np.array([math.nan if v is None else float(v) for v in vals]) * scale
        rows.append(np.nancumsum(row) if cumulative else row)
    return np.vstack(rows)


_PLOTS = (
    # file suffix, y field, x field (None = round), cumulative x, x scale, x label, y label
    ("accuracy-vs-round", "accuracy", None, False, 1.0, "round", "test accuracy"),
    ("accuracy-vs-seconds", "accuracy", "round_seconds", True, 1.0, "training seconds (start-up excluded)",
     "test accuracy"),
    ("accuracy-vs-mb-up", "accuracy", "bytes_up", True, 1e-6, "megabytes uploaded", "test accuracy"),
    ("residual-vs-round", "relative_residual", None, False, 1.0, "round", "relative residual 1 − ξ"),
)


def _slug(text: str) -> str:
    """A file name: letters, digits, '.', '-'; everything else (``=``, spaces, ``α``) one '_'."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("_") or "runs"


def _colours(strategies: Sequence[str]) -> dict[str, Any]:
    """One fixed colour per strategy (in report order), the same in every plot of a report."""
    from matplotlib import colormaps

    palette = colormaps["tab10" if len(strategies) <= 10 else "tab20"]
    return {s: palette(i % palette.N) for i, s in enumerate(strategies)}


def _initial(runs: Sequence[Mapping[str, Any]], field: str) -> np.ndarray | None:
    """Each run's value of ``field`` for the initial model (round 0), or None when a run lacks it."""
    values = [(r["results"].get("initial") or {}).get(field) for r in runs]
    if any(v is None for v in values):
        return None
    return np.array([float(v) for v in values])


#: Figure formats: a raster for report.md, a vector one for papers.
FIGURE_DPI = 200


def _plot_setting(
    by_strategy: Mapping[str, list[Mapping[str, Any]]], title: str, stem: Path, colours: Mapping[str, Any] | None = None
) -> list[Path]:
    """The setting's figures, each as PNG (``FIGURE_DPI``) and PDF; returns the PNGs then the PDFs'
    paths in pairs. Curves start at round 0 (the initial model) where every run recorded it."""
    from matplotlib.figure import Figure  # renders with Agg, no pyplot or global backend involved
    from matplotlib.ticker import MaxNLocator

    colours = colours or _colours(list(by_strategy))
    written = []
    for suffix, y_field, x_field, cumulative, scale, x_label, y_label in _PLOTS:
        lines = {}
        for strategy, runs in by_strategy.items():
            stacked = _curves(runs, y_field)
            x = np.arange(1, stacked.shape[1] + 1, dtype=float) if x_field is None else _curve(
                runs, x_field, cumulative, scale)
            start = _initial(runs, y_field)
            if start is not None:  # round 0: the initial model, before any round's time or bytes
                stacked = np.hstack([start[:, None], stacked])
                x = np.concatenate([[0.0], x])
            y = _mean(stacked)
            if np.isnan(y).all():
                continue  # e.g. no relative_residual outside BGMD
            lines[strategy] = (x, y, _spread(stacked))
        if not lines:
            continue
        fig = Figure(figsize=(6, 4))
        ax = fig.subplots()
        for strategy, (x, y, spread) in lines.items():
            colour = colours.get(strategy)
            ax.plot(x, y, label=strategy, color=colour)
            if not np.isnan(spread).all():  # mean ± sample std over seeds
                ax.fill_between(x, y - spread, y + spread, color=colour, alpha=0.2, linewidth=0)
        ax.set(xlabel=x_label, ylabel=y_label, title=title)
        if x_field is None:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # rounds are whole numbers
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = stem.with_name(f"{stem.name}_{suffix}.png")
        fig.savefig(path, dpi=FIGURE_DPI)
        fig.savefig(path.with_suffix(".pdf"))
        written.append(path)
    return written


def _cell(mean: float, std: float, seeds: int) -> str:
    return f"{100 * mean:.2f}" + (f" ± {100 * std:.2f}" if seeds > 1 else "")


def _context_title(context: tuple[tuple[str, Any], ...]) -> str:
    return ", ".join(f"{k}={v}" for k, v in context) or "all runs"


def _tuned_text(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


def worst_case_tables(
    records: Sequence[Mapping[str, Any]],
    tuned: Mapping[str, Sequence[Any]] | None = None,
    choices: Mapping[tuple[Any, ...], Choice] | None = None,
) -> str:
    """The protocol's tables (markdown): per context, each strategy's worst case over attacks per
    heterogeneity × ψ; with ``tuned`` axes, at the values chosen on the validation split, then the
    chosen values and the per-attack test accuracy at them. ``choices``: ``choose_tuned(records,
    tuned)`` when the caller has it already.

    Examples
    --------
    >>> def rec(attack, acc, seed):
    ...     return {"config": {"strategy": "gmd", "attack": attack, "byzantine-fraction": 0.2, "seed": seed},
    ...             "results": {"rounds": [{"round": 1, "accuracy": acc}]}}
    >>> print(worst_case_tables([rec("alie", 0.5, 0), rec("alie", 0.6, 1), rec("ipm", 0.9, 0), rec("ipm", 0.9, 1)]))
    ### Worst case over attacks, final test accuracy (%): all runs
    <BLANKLINE>
    | heterogeneity | ψ | gmd |
    |---|---:|---:|
    | iid | 0.2 | 55.00 ± 7.07 (alie, 2 seeds) |
    <BLANKLINE>
    """
    tuned = dict(tuned or {})
    choices = choose_tuned(records, tuned) if choices is None else choices
    contexts = list(dict.fromkeys(s[0] for s in choices))
    strategies = list(dict.fromkeys(r["config"]["strategy"] for r in records))
    parts = []
    for ctx in contexts:
        mine = {s: c for s, c in choices.items() if s[0] == ctx}
        rows = sorted({(s[2], s[3]) for s in mine}, key=lambda hp: (heterogeneity_order(hp[0]), hp[1]))
        header = ["| heterogeneity | ψ | " + " | ".join(strategies) + " |", "|---|---:|" + "---:|" * len(strategies)]
        at = " at the tuned values" if tuned else ""
        worst_lines = [f"### Worst case over attacks, final test accuracy (%){at}: {_context_title(ctx)}", "", *header]
        pick_lines = [f"### Tuned values chosen on the validation split ({', '.join(tuned)}): {_context_title(ctx)}",
                      "", *header]
        for het, psi in rows:
            worst_row, pick_row = [], []
            for strategy in strategies:
                choice: Choice | None = mine.get((ctx, strategy, het, psi))
                if choice is None:
                    worst_row.append("")
                    pick_row.append("")
                    continue
                w = worst_case(choice.records)
                seeds = f"{w.seeds} seed{'s' if w.seeds != 1 else ''}"
                worst_row.append(f"{_cell(w.mean, w.std, w.seeds)} ({w.attack}, {seeds})")
                pick_row.append(f"{_tuned_text(choice.values)} (validation worst {100 * choice.score:.1f}, "
                                f"{choice.worst_attack}; {choice.candidates} candidates)")
            worst_lines.append(f"| {het} | {psi:g} | " + " | ".join(worst_row) + " |")
            pick_lines.append(f"| {het} | {psi:g} | " + " | ".join(pick_row) + " |")
        parts.append("\n".join(worst_lines))
        if tuned:
            parts.append("\n".join(pick_lines))
            parts += _per_attack_at_choices(ctx, mine, strategies, [het for het, _ in rows])
    return "\n\n".join(parts) + "\n"


def _per_attack_at_choices(
    ctx: tuple[tuple[str, Any], ...], mine: Mapping[tuple[Any, ...], Choice], strategies: Sequence[str],
    heterogeneities: Sequence[str],
) -> list[str]:
    """One table per heterogeneity: every attack × ψ by strategy, each cell at the values chosen
    for its strategy and ψ (the choice is per setting, so one column may mix values)."""
    parts = []
    for het in dict.fromkeys(heterogeneities):
        by_setting = {(s[1], s[3]): _runs_by_setting(c.records) for s, c in mine.items() if s[2] == het}
        runs = [r for grouped in by_setting.values() for v in grouped.values() for r in v]
        title = ", ".join([f"heterogeneity={het}", *(f"{k}={v}" for k, v in ctx)])
        parts.append(_accuracy_table(
            f"Final test accuracy (%) at the tuned values, per attack: {title}", strategies, _settings(runs),
            lambda setting, strategy: by_setting.get((strategy, setting[2]), {}).get(setting, [])))
    return parts


def _runs_by_setting(records: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str, float], list[Mapping[str, Any]]]:
    out: dict[tuple[str, str, float], list[Mapping[str, Any]]] = defaultdict(list)
    for r in records:
        out[_setting(r)].append(r)
    return out


def _heatmaps(choices: Mapping[tuple[Any, ...], Choice], tuned: Mapping[str, Sequence[Any]], out: Path) -> list[Path]:
    written = []
    for ctx in dict.fromkeys(s[0] for s in choices):
        for strategy in dict.fromkeys(s[1] for s in choices if s[0] == ctx):
            hets, psis, values, notes = heatmap_panels(choices, ctx, strategy)
            if len(hets) * len(psis) < 2:
                continue  # one cell: the tables say it all
            cfg = next(r["config"] for s, c in choices.items() if s[0] == ctx and s[1] == strategy for r in c.records)
            title = (f"{strategy}: final test accuracy (%), {cfg.get('dataset')}/{cfg.get('model')}, "
                     f"{cfg.get('num-clients')} clients, {cfg.get('rounds')} rounds"
                     + (f", tuned: {', '.join(tuned)}" if tuned else "")
                     + (f"; {_context_title(ctx)}" if ctx else ""))
            stem = _slug("_".join(["heatmap", strategy, *(f"{k}-{v}" for k, v in ctx)]))
            written.append(plot_heatmaps(hets, psis, values, notes, title, out / f"{stem}.png"))
    return written


def write_report(
    sweep_dir: str | Path, report_dir: str | Path, tuned: Mapping[str, Sequence[Any]] | None = None,
    *, plots: bool = True,
) -> list[Path]:
    """Write ``report.md`` (tables, then the plots) and the PNG plots of a sweep into ``report_dir``.

    Parameters
    ----------
    sweep_dir : str or Path
        A sweep's folder, or its ``results.jsonl``.
    report_dir : str or Path
        Where to write (created when missing).
    tuned : mapping, optional
        Tuned run key → candidate values in grid order; default: what the sweep recorded in its
        ``tuning.json`` (:func:`~fedrobust.experiments.sweep.read_tuning`), none when absent.
    plots : bool
        Draw the per-setting curves (the ``## Plots`` section); without them the report holds the
        tables and the heatmaps only.

    Returns
    -------
    list of Path
        ``report.md`` first, then every figure written: the heatmaps' PNGs, then each plot as a PNG
        (200 dpi, linked from ``report.md``) and a PDF.

    Raises
    ------
    ValueError
        The sweep has no finished cells, or ``report_dir`` cannot be written (a
        :class:`~fedrobust.config.ConfigError`, checked first).
    """
    out = Path(report_dir)
    check_output_dir(out, "report folder")  # before reading and plotting
    records = read_sweep(sweep_dir)
    if not records:
        raise ValueError(f"sweep_dir {str(sweep_dir)!r} holds no finished cells (no results.jsonl records)")
    tuned = read_tuning(sweep_dir) if tuned is None else {k: list(v) for k, v in tuned.items()}
    choices = choose_tuned(records, tuned)  # once, for the tables and the heatmaps
    body = ["# Sweep report", "", f"{len(records)} runs. {DASH}: every seed diverged (non-finite final loss or "
            f"accuracy, or final accuracy ≤ chance + {CHANCE_MARGIN}).", "", markdown_tables(records)]
    body += ["## Worst case over attacks", "",
             "Per strategy, heterogeneity and ψ, the attack with the lowest mean final test accuracy over seeds "
             "(a non-finite result counts as 0); at ψ = 0 the clean run."
             + (f" The tuned axes ({', '.join(tuned)}) take, per strategy and setting, the values whose worst case "
                "over attacks of the final validation accuracy is highest (ties: the earliest in grid order); the "
                "test split plays no part in the choice." if tuned else ""), "",
             worst_case_tables(records, tuned, choices)]
    pngs = _heatmaps(choices, tuned, out)
    if pngs:
        body += ["## Heatmaps", "", "Final test accuracy (%) over ψ × heterogeneity, one panel per attack and one "
                 "for the worst case (its attack under the value), one colour scale from 0 to 100.", ""]
        body += [f"![{p.stem}]({p.name})" for p in pngs] + [""]
    if plots:
        body += ["## Plots", ""]
    colours = _colours(list(dict.fromkeys(r["config"]["strategy"] for r in records)))
    for group, members in group_records(records).items() if plots else ():
        settings: dict[tuple[str, str, float], dict[str, list[Mapping[str, Any]]]] = defaultdict(lambda: defaultdict(list))
        for r in members:
            settings[_setting(r)][r["config"]["strategy"]].append(r)
        first = members[0]["config"]
        where = f"{first.get('dataset')}/{first.get('model')}, {first.get('num-clients')} clients"
        clean_runs = sum(1 for _, _, psi in _settings(members) if psi == 0)
        for attack, params, psi in _settings(members):
            by_strategy = settings[(attack, params, psi)]
            label = _setting_label(attack, params)
            if psi == 0:  # no Byzantine client: the attack key changes nothing but the cell
                setting = name = "clean" if clean_runs == 1 else f"clean ({label})"
            else:
                setting, name = f"{label}, ψ={psi:g}", f"{label}_psi{psi:g}"
            heading = ", ".join([setting, *(f"{k}={v}" for k, v in group)])
            stem = out / _slug("_".join([name, *(f"{k}-{v}" for k, v in group)]))
            written = _plot_setting(by_strategy, f"{where}: {heading}", stem, colours)
            pngs += written + [p.with_suffix(".pdf") for p in written]
            body += [f"### {heading}", ""] + [f"![{p.stem}]({p.name})" for p in written] + [""]
    report = out / "report.md"
    report.write_text("\n".join(body), encoding="utf-8")
    return [report, *pngs]
