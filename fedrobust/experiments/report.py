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

The plots (one set per table and attack × ψ setting, one line per strategy, the mean over seeds):
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
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import placement_keys
from ..core.paths import check_output_dir
from .sweep import read_sweep

__all__ = ["CHANCE_MARGIN", "DASH", "diverged", "format_cell", "group_records", "markdown_tables", "write_report"]

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
    groups: dict[tuple[tuple[str, Any], ...], list[Mapping[str, Any]]] = defaultdict(list)
    for r in records:
        groups[tuple((k, r["config"].get(k)) for k in varying)].append(r)
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
        lines = [f"### Final test accuracy (%): {title}", "",
                 "| attack | ψ | " + " | ".join(strategies) + " |",
                 "|---|---:|" + "---:|" * len(strategies)]
        for attack, params, psi in _settings(members):
            row = []
            for s in strategies:
                runs = cells.get((attack, params, psi, s), [])
                if not runs:
                    row.append("")
                    continue
                ok = [_final(r, "accuracy") for r in runs if not diverged(r)]
                row.append(format_cell(ok, len(runs) - len(ok)))
            lines.append(f"| {_setting_label(attack, params)} | {psi:g} | " + " | ".join(row) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def _curve(runs: Sequence[Mapping[str, Any]], field: str, cumulative: bool = False, scale: float = 1.0) -> np.ndarray:
    """The mean over runs of a per-round field (NaN where absent), truncated to the shortest run."""
    length = min(len(r["results"]["rounds"]) for r in runs)
    rows = []
    for r in runs:
        vals = [rec.get(field) for rec in r["results"]["rounds"][:length]]
        row = np.array([math.nan if v is None else float(v) for v in vals]) * scale
        rows.append(np.nancumsum(row) if cumulative else row)
    stacked = np.vstack(rows)
    out = np.full(length, math.nan)
    seen = ~np.isnan(stacked).all(axis=0)
    out[seen] = np.nanmean(stacked[:, seen], axis=0)
    return out


_PLOTS = (
    # file suffix, y field, x field (None = round), cumulative x, x scale, x label, y label
    ("accuracy-vs-round", "accuracy", None, False, 1.0, "round", "test accuracy"),
    ("accuracy-vs-seconds", "accuracy", "round_seconds", True, 1.0, "training seconds (start-up excluded)",
     "test accuracy"),
    ("accuracy-vs-mb-up", "accuracy", "bytes_up", True, 1e-6, "megabytes uploaded", "test accuracy"),
    ("residual-vs-round", "relative_residual", None, False, 1.0, "round", "relative residual 1 − ξ"),
)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", text).strip("_") or "runs"


def _plot_setting(by_strategy: Mapping[str, list[Mapping[str, Any]]], title: str, stem: Path) -> list[Path]:
    from matplotlib.figure import Figure  # renders with Agg, no pyplot or global backend involved

    written = []
    for suffix, y_field, x_field, cumulative, scale, x_label, y_label in _PLOTS:
        lines = {}
        for strategy, runs in by_strategy.items():
            y = _curve(runs, y_field)
            if np.isnan(y).all():
                continue  # e.g. no relative_residual outside BGMD
            x = np.arange(1, len(y) + 1) if x_field is None else _curve(runs, x_field, cumulative, scale)
            lines[strategy] = (x, y)
        if not lines:
            continue
        fig = Figure(figsize=(6, 4))
        ax = fig.subplots()
        for strategy, (x, y) in lines.items():
            ax.plot(x, y, label=strategy)
        ax.set(xlabel=x_label, ylabel=y_label, title=title)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = stem.with_name(f"{stem.name}_{suffix}.png")
        fig.savefig(path, dpi=100)
        written.append(path)
    return written


def write_report(sweep_dir: str | Path, report_dir: str | Path) -> list[Path]:
    """Write ``report.md`` (tables, then the plots) and the PNG plots of a sweep into ``report_dir``.

    Parameters
    ----------
    sweep_dir : str or Path
        A sweep's folder, or its ``results.jsonl``.
    report_dir : str or Path
        Where to write (created when missing).

    Returns
    -------
    list of Path
        ``report.md`` first, then every PNG written.

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
    pngs: list[Path] = []
    body = ["# Sweep report", "", f"{len(records)} runs. {DASH}: every seed diverged (non-finite final loss or "
            f"accuracy, or final accuracy ≤ chance + {CHANCE_MARGIN}).", "", markdown_tables(records), "## Plots", ""]
    for group, members in group_records(records).items():
        settings: dict[tuple[str, str, float], dict[str, list[Mapping[str, Any]]]] = defaultdict(lambda: defaultdict(list))
        for r in members:
            settings[_setting(r)][r["config"]["strategy"]].append(r)
        for attack, params, psi in _settings(members):
            by_strategy = settings[(attack, params, psi)]
            title = ", ".join([f"{_setting_label(attack, params)} ψ={psi:g}", *(f"{k}={v}" for k, v in group)])
            stem = out / _slug("_".join([_setting_label(attack, params), f"psi={psi:g}",
                                         *(f"{k}={v}" for k, v in group)]))
            written = _plot_setting(by_strategy, title, stem)
            pngs += written
            body += [f"### {title}", ""] + [f"![{p.stem}]({p.name})" for p in written] + [""]
    report = out / "report.md"
    report.write_text("\n".join(body), encoding="utf-8")
    return [report, *pngs]
