"""Reproduce BGMD offline: the analogue of Table 3, and BGMD's ρ-and-memory ablation.

The paper: Acharya, Hashemi, Jain, Sanghavi, Dhillon and Topcu (2022), "Robust Training in High
Dimensions via Block Coordinate Geometric Median Descent" (AISTATS). Its Table 3 trains a 1.12M-parameter CNN on MNIST with SGD (mean), CMD, BGMD and GMD, clean
and under gradient attacks (scaled bit-flip, additive Gaussian N(0, 100)) at ψ = 20% and 40%, plus
the backdoor label attack. The default here is the same grid on what ships offline: 5,000 real
MNIST digits (``mnist5k``), the ``mlp`` model, 10 clients (all sampled), 40 rounds, one seed,
with fedrobust's strategies ``mean-sgd``, ``cmd``, ``bgmd`` (ρ = 0.1) and ``gmd``. The ablation
runs BGMD under 20% bit-flip for ρ ∈ {0.01, 0.05, 0.1, 0.3, 1} with and without its residual
memory (``memory = mean`` / ``none``); ρ = 1 is GMD.

``--full`` is the paper-sized setting for a GPU machine: full MNIST from ``--data-dir`` (the
four IDX files), the 1.16M-parameter ``lenet``, 100 rounds, 3 seeds.

Run: ``.venv/bin/python scripts/reproduce_001.py`` (38 runs; the in-process engine by default,
``--engine ray`` runs every cell through Flower's simulation engine; ``--smoke`` is a seconds-long
check). Raw runs go to ``results/reproduce/001`` (resumable sweeps); the README with the tables
and two small plots to ``docs/reproduction/001``.
"""

from __future__ import annotations

import functools
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from _reproduce import check_args, command_line, make_parser, md_table, new_figure, run_cells, save_png, write_readme

from fedrobust.config import RunConfig
from fedrobust.experiments.report import diverged
from fedrobust.experiments.sweep import expand_grid

STRATEGIES = ["mean-sgd", "cmd", "bgmd", "gmd"]
#: (attack, byzantine fractions) rows of Table 3 that have an offline analogue here.
ATTACKS = [("none", [0.0]), ("bit-flip", [0.2, 0.4]), ("gaussian", [0.2, 0.4]), ("backdoor", [0.2, 0.4])]
ABLATION_RHO = [0.01, 0.05, 0.1, 0.3, 1.0]
ABLATION_MEMORY = ["mean", "none"]
#: Accuracy points within which two single-seed runs count as equal in the claims table.
NOISE = 0.5

#: The paper's Table 3 (MNIST, 1.12M CNN): test accuracy %, mean over runs, "–" where SGD failed.
PAPER = {
    ("none", 0.0): {"mean-sgd": "99.27", "cmd": "98.83", "bgmd": "99.09", "gmd": "99.24"},
    ("bit-flip", 0.2): {"mean-sgd": "9.51", "cmd": "98.79", "bgmd": "99.06", "gmd": "98.98"},
    ("bit-flip", 0.4): {"mean-sgd": "9.60", "cmd": "93.69", "bgmd": "97.89", "gmd": "98.11"},
    ("gaussian", 0.2): {"mean-sgd": "9.68", "cmd": "94.26", "bgmd": "98.61", "gmd": "98.69"},
    ("gaussian", 0.4): {"mean-sgd": "9.74", "cmd": "91.86", "bgmd": "97.78", "gmd": "92.78"},
}


def base_config(full: bool, data_dir: str, seeds: int) -> dict[str, Any]:
    """The fixed keys (and the seed axis) of every cell."""
    common: dict[str, Any] = {
        "num-clients": 10, "clients-per-round": 10, "lr": 0.3, "batch-size": 64, "rho": 0.1,
        "seed": list(range(seeds)),
    }
    if full:
        return {**common, "dataset": "mnist", "data-dir": data_dir, "model": "lenet", "rounds": 100, "lr": 0.1}
    return {**common, "dataset": "mnist5k", "model": "mlp", "rounds": 40}


def table_cells(base: dict[str, Any]) -> list[RunConfig]:
    """Every Table 3 cell: strategies × (attack, ψ) × seeds."""
    cells: list[RunConfig] = []
    for attack, fractions in ATTACKS:
        cells += expand_grid({**base, "strategy": STRATEGIES, "attack": attack, "byzantine-fraction": fractions})
    return cells


def ablation_cells(base: dict[str, Any]) -> list[RunConfig]:
    """BGMD under 20% bit-flip: ρ × memory × seeds."""
    return expand_grid({**base, "strategy": "bgmd", "attack": "bit-flip", "byzantine-fraction": 0.2,
                        "rho": ABLATION_RHO, "memory": ABLATION_MEMORY})


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def comparison_table(records: list[dict[str, Any]]) -> str:
    """Ours next to Table 3's numbers: final accuracy % (mean over seeds), "–" where every run diverged."""
    runs: dict[tuple[str, float, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        cfg = r["config"]
        runs[(cfg["attack"], float(cfg["byzantine-fraction"]), cfg["strategy"])].append(r)
    lines = ["| attack | ψ | " + " | ".join(f"{s} (ours / paper)" for s in STRATEGIES) + " |",
             "|---|---:|" + "---:|" * len(STRATEGIES)]
    for attack, fractions in ATTACKS:
        for psi in fractions:
            row = []
            for s in STRATEGIES:
                cell = runs.get((attack, psi, s), [])
                ok = [100 * r["results"]["rounds"][-1]["accuracy"] for r in cell if not diverged(r)]
                ours = f"{_mean(ok):.1f}" if ok else ("–" if cell else "")
                row.append(f"{ours} / {PAPER.get((attack, psi), {}).get(s, 'n/a')}")
            lines.append(f"| {attack} | {psi:g} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def backdoor_table(records: list[dict[str, Any]]) -> str:
    """Backdoor: final accuracy and attack success rate (share of test inputs with the trigger sent to the target)."""
    lines = ["| ψ | " + " | ".join(STRATEGIES) + " |", "|---:|" + "---:|" * len(STRATEGIES)]
    by: dict[tuple[float, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if r["config"]["attack"] == "backdoor":
            by[(float(r["config"]["byzantine-fraction"]), r["config"]["strategy"])].append(r)
    for psi in sorted({k[0] for k in by}):
        row = []
        for s in STRATEGIES:
            last = [r["results"]["rounds"][-1] for r in by.get((psi, s), [])]
            acc = _mean([100 * x["accuracy"] for x in last])
            asr = _mean([100 * x.get("attack_success_rate", float("nan")) for x in last])
            row.append(f"{acc:.1f} (ASR {asr:.1f})")
        lines.append(f"| {psi:g} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def ablation_table(records: list[dict[str, Any]]) -> str:
    """BGMD ablation: final accuracy % and aggregation ms per round for each ρ and memory."""
    by: dict[tuple[float, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by[(float(r["config"]["rho"]), r["config"]["memory"])].append(r)
    lines = ["| ρ | " + " | ".join(f"memory={m}: accuracy % / aggregation ms" for m in ABLATION_MEMORY) + " |",
             "|---:|" + "---:|" * len(ABLATION_MEMORY)]
    for rho in ABLATION_RHO:
        row = []
        for m in ABLATION_MEMORY:
            runs = by.get((rho, m), [])
            acc = _mean([100 * r["results"]["rounds"][-1]["accuracy"] for r in runs if not diverged(r)])
            ms = _mean([1e3 * x["aggregation_seconds"] for r in runs for x in r["results"]["rounds"]])
            row.append("–" if runs and all(diverged(r) for r in runs) else f"{acc:.1f} / {ms:.1f}")
        lines.append(f"| {rho:g} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def _final_pct(records: list[dict[str, Any]], strategy: str, attack: str, psi: float) -> float:
    """Mean final accuracy (%) over the seeds that did not diverge; NaN when every run diverged."""
    ok = [100 * r["results"]["rounds"][-1]["accuracy"] for r in records
          if (r["config"]["strategy"], r["config"]["attack"], float(r["config"]["byzantine-fraction"])) == (strategy, attack, psi)
          and not diverged(r)]
    return _mean(ok)


def claims_table(records: list[dict[str, Any]], ablation: list[dict[str, Any]]) -> str:
    """The paper's headline claims, what we measured, and whether the claim holds here."""
    acc = functools.partial(_final_pct, records)
    clean = {s: acc(s, "none", 0.0) for s in STRATEGIES}
    drop = {(s, a, p): clean[s] - acc(s, a, p) for s in STRATEGIES for a, ps in ATTACKS for p in ps}
    rows = []

    def ch(s: str, a: str, p: float) -> str:  # change vs the clean run, signed, e.g. "bgmd −1.2"
        return f"{s} {-drop[(s, a, p)]:+.1f}".replace("-", "−").replace("mean−sgd", "mean-sgd")

    def claim(where: str, says: str, ours: str, holds: bool | None) -> None:
        rows.append([where, says, ours, {True: "yes", False: "no", None: "partly"}[holds]])

    gm = ("bgmd", "gmd")
    claim("Table 3, clean", "BGMD and GMD match SGD's clean accuracy (99.09, 99.24 vs 99.27)",
          f"bgmd {clean['bgmd']:.1f}, gmd {clean['gmd']:.1f} vs mean-sgd {clean['mean-sgd']:.1f}",
          all(abs(clean[s] - clean["mean-sgd"]) <= 1.5 for s in gm))
    for psi in (0.2, 0.4):
        sgd = acc("mean-sgd", "bit-flip", psi)
        worst = max(drop[(s, "bit-flip", psi)] for s in gm)
        claim(f"Table 3, bit-flip {psi:g}", f"SGD fails; BGMD and GMD lose ≤ {1.2 if psi == 0.4 else 0.3:g} points; "
              "CMD loses more at 40%",
              f"mean-sgd {'diverged' if sgd != sgd else f'{sgd:.1f}'}; {ch('bgmd', 'bit-flip', psi)}, "
              f"{ch('gmd', 'bit-flip', psi)}, {ch('cmd', 'bit-flip', psi)}",
              True if sgd != sgd and worst <= 3 else (None if sgd != sgd else False))
    for psi in (0.2, 0.4):
        sgd_drop = drop[("mean-sgd", "gaussian", psi)]
        worst = max(drop[(s, "gaussian", psi)] for s in gm)
        claim(f"Table 3, additive {psi:g}", "SGD fails (9.7%); BGMD and GMD stay near their clean accuracy",
              f"{ch('mean-sgd', 'gaussian', psi)}; {ch('bgmd', 'gaussian', psi)}, {ch('gmd', 'gaussian', psi)}",
              True if sgd_drop > 50 and worst <= 3 else (None if worst <= 3 else False))
    for psi in (0.2, 0.4):
        worst = max(drop[(s, "backdoor", psi)] for s in gm)
        claim(f"Table 2 (FMNIST), backdoor {psi:g}", "BGMD and GMD keep their accuracy better than SGD and CMD",
              ", ".join(ch(s, "backdoor", psi) for s in ("bgmd", "gmd", "mean-sgd", "cmd")),
              worst <= min(drop[("mean-sgd", "backdoor", psi)], drop[("cmd", "backdoor", psi)]) + NOISE)
    if ablation:
        by = {(float(r["config"]["rho"]), r["config"]["memory"]): 100 * r["results"]["rounds"][-1]["accuracy"]
              for r in ablation if not diverged(r)}
        small = [rho for rho in ABLATION_RHO if rho < 1 and (rho, "mean") in by and (rho, "none") in by]
        gains = [by[(rho, "mean")] - by[(rho, "none")] for rho in small]
        claim("Fig. 6, memory ablation", "the residual memory makes small blocks (ρ ≪ 1) as good as GMD",
              ", ".join(f"ρ={rho:g}: {g:+.1f}" for rho, g in zip(small, gains)) + " points with memory",
              all(g >= 0 for g in gains) if gains else None)
    return md_table(["figure / table", "the paper says", "ours (accuracy points vs the strategy's clean run)", "holds"], rows)


DIFFERENCES = """The paper trains a 1.12M-parameter CNN on the 60,000 MNIST digits (Table 3); the default here uses the
5,000 digits that ship offline, an MLP, 10 clients and 40 rounds with one seed, so every accuracy
is lower (the clean MLP ends near 91% on this data, the CNN at 99%) and single-seed differences of
about a point are noise. Plain averaging (mean-SGD) is destroyed by the scaled bit-flip, as in
the paper. Additive N(0, 100) noise from 20–40% of the clients damages it badly but does not make it
diverge at this model size, unlike the paper's SGD. At ψ = 0.4 the GM family loses more here (the
two-in-five attackers sit at −100 × their gradient, and with the MLP's noisier 64-sample gradients
the geometric median's bias towards them costs more than on the paper's CNN); CMD loses most. With full
MNIST and ``lenet`` (``--full``, a GPU run) the numbers are expected to move towards the paper's."""


def main(argv: list[str] | None = None) -> None:
    parser = make_parser("001", __doc__)
    parser.add_argument("--data-dir", default="", help="with --full: the folder holding MNIST's four IDX files")
    parser.add_argument("--only", choices=["table", "ablation"], default=None, help="run one part")
    args = parser.parse_args(argv)
    check_args(parser, args)
    if args.full and not args.data_dir:
        parser.error("--full needs --data-dir (the folder holding MNIST's four IDX files)")
    seeds = 3 if args.full and args.seeds == 1 else args.seeds
    base = base_config(args.full, args.data_dir, seeds)
    if args.smoke:
        base.update({"dataset": "digits", "rounds": 2, "num-clients": 5, "clients-per-round": 5})
    out, report_dir = Path(args.output), Path(args.report_dir)
    started = time.perf_counter()
    setting = ", ".join(f"{k}={v}" for k, v in base.items() if k != "seed")
    sections = ["# Reproduced offline: BGMD (Acharya et al., 2022), Table 3 analogue and the ρ-and-memory ablation", "",
                'Paper: Acharya, Hashemi, Jain, Sanghavi, Dhillon and Topcu (2022), "Robust Training in High Dimensions '
                'via Block Coordinate Geometric Median Descent", AISTATS.', "",
                f"Setting: {setting}, {seeds} seed(s), engine {args.engine}. Command: `{command_line()}`.", ""]
    records: list[dict[str, Any]] = []
    ablation: list[dict[str, Any]] = []
    if args.only in (None, "table"):
        records = run_cells(table_cells(base), out / "table", engine=args.engine)
    if args.only in (None, "ablation"):
        ablation = run_cells(ablation_cells(base), out / "ablation", engine=args.engine)
    if records:
        sections += ["## The paper's claims, here", "", claims_table(records, ablation), "",
                     "## Final test accuracy (%): ours / the paper's Table 3 (MNIST, CNN)", "", comparison_table(records), "",
                     "## Backdoor: final accuracy and attack success rate (%)", "", backdoor_table(records), ""]
    if ablation:
        sections += ["## BGMD ablation under 20% bit-flip: block fraction ρ and residual memory", "",
                     ablation_table(ablation), "",
                     "ρ = 1 is GMD (every coordinate each round); memory = none drops the residual memory "
                     "(coordinates outside the block are not updated at all that round). Aggregation times "
                     "are wall-clock on a shared machine; `scripts/bench_bgmd_vs_gmd.py` measures them properly.", ""]
    sections += ["## Where we differ", "", DIFFERENCES, ""]
    if records:
        sections += ["## Plots", ""]
        for attack in ("bit-flip", "gaussian"):
            png = plot_attack(records, attack, report_dir / f"{attack}.png")
            sections.append(f"![{png.stem}]({png.name})")
    run_minutes = sum(x["round_seconds"] for r in records + ablation for x in r["results"]["rounds"]) / 60
    sections.append(f"\nThe {len(records) + len(ablation)} runs took {run_minutes:.1f} min of round time in all "
                    f"(this invocation: {(time.perf_counter() - started) / 60:.1f} min; finished runs are reused).")
    path = write_readme(report_dir, "\n".join(sections))
    print("\n".join(sections))
    print(f"\nwritten: {path}")


def plot_attack(records: list[dict[str, Any]], attack: str, path: Path) -> Path:
    """Test accuracy vs round, one panel per ψ (clean runs dashed), one line per strategy."""
    fractions = dict(ATTACKS)[attack]
    fig, axes = new_figure(ncols=len(fractions))
    for ax, psi in zip(axes, fractions):
        for i, s in enumerate(STRATEGIES):
            color = f"C{i}"
            for a, p, style in (("none", 0.0, ":"), (attack, psi, "-")):
                runs = [r for r in records if (r["config"]["strategy"], r["config"]["attack"],
                                                float(r["config"]["byzantine-fraction"])) == (s, a, p)]
                if runs:
                    y = [x["accuracy"] for x in runs[0]["results"]["rounds"]]
                    ax.plot(range(1, len(y) + 1), y, style, color=color, label=s if style == "-" else None)
        ax.set(title=f"{attack} ψ={psi:g} (dotted: clean)", xlabel="round", ylabel="test accuracy", ylim=(0, 1))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    return save_png(fig, path)


if __name__ == "__main__":
    main()
