"""Heatmaps of final test accuracy over ψ × heterogeneity, one figure per strategy.

Each figure has one panel per attack and a last panel with the worst case over attacks
(:func:`fedrobust.experiments.selection.worst_case`); rows are the heterogeneity settings (iid
first, then ``dirichlet`` from the largest α down, then the other partitioners), columns the
Byzantine fractions ψ, each cell the mean over seeds of the final test accuracy in %, printed in the
cell, on one colour scale from 0 to 100 shared by every figure so that figures compare at a glance.
At ψ = 0 every panel shows the clean run (the records at ψ = 0, whatever their attack). With tuned
axes each cell uses its setting's chosen values (:func:`~fedrobust.experiments.selection.choose_tuned`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .selection import Choice, attack_label, final_score, heterogeneity_order, worst_case

__all__ = ["WORST_PANEL", "heatmap_panels", "plot_heatmaps"]

#: Title of the worst-case panel.
WORST_PANEL = "worst case over attacks"


def heatmap_panels(
    choices: Mapping[tuple[Any, ...], Choice], context: tuple[Any, ...], strategy: str
) -> tuple[list[str], list[float], dict[str, np.ndarray], dict[str, list[list[str]]]]:
    """The cells of one strategy's figure.

    Returns
    -------
    hets : list of str
        Row labels (heterogeneity settings), ordered.
    psis : list of float
        Column values (ψ), ascending.
    values : dict
        Panel title → (rows, columns) array of accuracies in % (NaN: not run).
    notes : dict
        Panel title → per-cell text under the value (the worst attack's name in the worst-case panel).

    Examples
    --------
    >>> from fedrobust.experiments.selection import choose_tuned
    >>> def rec(attack, psi, acc):
    ...     return {"config": {"strategy": "gmd", "attack": attack, "byzantine-fraction": psi},
    ...             "results": {"rounds": [{"round": 1, "accuracy": acc}]}}
    >>> choices = choose_tuned([rec("none", 0.0, 0.9), rec("alie", 0.2, 0.5), rec("ipm", 0.2, 0.7)], {})
    >>> hets, psis, values, notes = heatmap_panels(choices, (), "gmd")
    >>> hets, psis, list(values)
    (['iid'], [0.0, 0.2], ['alie', 'ipm', 'worst case over attacks'])
    >>> values["alie"].tolist(), values["worst case over attacks"].tolist(), notes["worst case over attacks"]
    ([[90.0, 50.0]], [[90.0, 50.0]], [['', 'alie']])
    """
    mine = {s: c for s, c in choices.items() if s[0] == context and s[1] == strategy}
    hets = sorted({s[2] for s in mine}, key=heterogeneity_order)
    psis = sorted({s[3] for s in mine})
    attacks = list(dict.fromkeys(
        attack_label(r["config"]) for s, c in mine.items() if s[3] > 0 for r in c.records
    )) or list(dict.fromkeys(attack_label(r["config"]) for c in mine.values() for r in c.records))
    panels = [*attacks, WORST_PANEL]
    values = {p: np.full((len(hets), len(psis)), np.nan) for p in panels}
    notes = {p: [[""] * len(psis) for _ in hets] for p in panels}
    for (_, _, het, psi), choice in mine.items():
        i, j = hets.index(het), psis.index(psi)
        for attack in attacks:
            runs = [r for r in choice.records if psi == 0 or attack_label(r["config"]) == attack]
            if runs:
                values[attack][i, j] = 100.0 * np.mean([final_score(r) for r in runs])
        worst = worst_case(choice.records)
        values[WORST_PANEL][i, j] = 100.0 * worst.mean
        notes[WORST_PANEL][i][j] = worst.attack if psi > 0 else ""
    return hets, psis, values, notes


def plot_heatmaps(
    hets: Sequence[str], psis: Sequence[float], values: Mapping[str, np.ndarray],
    notes: Mapping[str, Sequence[Sequence[str]]], title: str, path: Path, *, dpi: int = 200,
) -> Path:
    """Draw one strategy's panels (:func:`heatmap_panels`) into ``path`` (PNG, ``dpi``)."""
    from matplotlib.figure import Figure  # renders with Agg, no pyplot or global backend involved

    names = list(values)
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    width = 1.6 + 0.95 * max(len(psis), 2)
    height = 1.2 + 0.6 * max(len(hets), 1)
    fig = Figure(figsize=(cols * width + 1.0, rows * height + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    image = None
    for ax, name in zip(axes, names):
        grid = values[name]
        image = ax.imshow(np.ma.masked_invalid(grid), vmin=0.0, vmax=100.0, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(psis)), [f"{p:g}" for p in psis])
        ax.set_yticks(range(len(hets)), list(hets))
        ax.set_xlabel("Byzantine fraction ψ")
        ax.set_title(name, fontsize=10)
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                if np.isnan(grid[i, j]):
                    ax.text(j, i, "not run", ha="center", va="center", fontsize=7, color="grey")
                    continue
                note = notes[name][i][j]
                text = f"{grid[i, j]:.1f}" + (f"\n{note}" if note else "")
                colour = "black" if grid[i, j] > 60 else "white"
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color=colour)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    if image is not None:
        fig.colorbar(image, ax=list(axes[: len(names)]), label="final test accuracy (%)", shrink=0.9)
    fig.suptitle(title, fontsize=11)
    fig.savefig(path, dpi=dpi)
    return path
