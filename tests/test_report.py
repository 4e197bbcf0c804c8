"""`fedrobust report`: Table-2-shaped markdown, the divergence rule, and the PNG plots, from hand-made records."""

import json
import math

import pytest

from fedrobust.cli import main
from fedrobust.experiments.report import diverged, format_cell, group_records, markdown_tables, write_report


def record(strategy, attack="none", psi=0.0, seed=0, final=0.9, loss=0.3, rounds=3, residual=False, **config):
    recs = []
    for r in range(1, rounds + 1):
        rec = {"round": r, "accuracy": final if r == rounds else 0.5, "loss": loss if r == rounds else 1.0,
               "bytes_up": 2_000_000, "round_seconds": 0.5}
        if residual:
            rec["relative_residual"] = 0.5 / r
        recs.append(rec)
    cfg = {"strategy": strategy, "attack": attack, "attack-params": "", "byzantine-fraction": psi, "seed": seed,
           "rounds": rounds, "lr": 0.1, **config}
    return {"cell": f"{strategy}-{attack}-{psi}-{seed}-{config}", "config": cfg, "num_classes": 10,
            "results": {"config": cfg, "initial": {}, "rounds": recs}}


def small_sweep():
    out = []
    for seed, jitter in ((0, 0.0), (1, 0.02)):
        out += [record("mean-sgd", seed=seed, final=0.90 + jitter), record("bgmd", seed=seed, final=0.88 + jitter,
                                                                           residual=True)]
        out += [record("mean-sgd", "bit-flip", 0.2, seed, final=0.1, loss=math.nan),
                record("bgmd", "bit-flip", 0.2, seed, final=0.86 + jitter, residual=True)]
    out.append(record("mean-sgd", "bit-flip", 0.4, 0, final=0.70))  # one seed finished ...
    out.append(record("mean-sgd", "bit-flip", 0.4, 1, final=0.11))  # ... one at chance
    return out


def write_jsonl(path, records):
    path.mkdir(parents=True, exist_ok=True)
    (path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_the_divergence_rule():
    assert not diverged(record("bgmd", final=0.9))
    assert diverged(record("bgmd", final=0.9, loss=math.nan))  # non-finite loss
    assert diverged(record("bgmd", final=math.inf))
    assert diverged(record("bgmd", final=0.12)) and not diverged(record("bgmd", final=0.125))  # 1/10 + 0.02
    no_classes = record("bgmd", final=0.05)
    no_classes["num_classes"] = None
    assert not diverged(no_classes)  # without num_classes only the non-finite rule applies


def test_cells_are_mean_and_sample_std_in_percent():
    assert format_cell([0.9], 0) == "90.00"
    assert format_cell([0.8, 0.9, 1.0], 0) == "90.00 ± 10.00"
    assert format_cell([0.7], 1) == "70.00 (1/2 diverged)"
    assert format_cell([], 2) == "–"


def test_the_table_has_attack_by_psi_rows_and_strategy_columns():
    table = markdown_tables(small_sweep()).strip().splitlines()
    assert table[0] == "### Final test accuracy (%): all runs, mean ± std over 2 seed(s)"
    assert table[2] == "| attack | ψ | mean-sgd | bgmd |"
    assert table[3] == "|---|---:|---:|---:|"
    assert table[4:] == [
        "| none | 0 | 91.00 ± 1.41 | 89.00 ± 1.41 |",
        "| bit-flip | 0.2 | – | 87.00 ± 1.41 |",
        "| bit-flip | 0.4 | 70.00 (1/2 diverged) |  |",
    ]


def test_runs_that_differ_in_another_key_go_to_separate_tables():
    records = [record("bgmd", lr=0.1), record("bgmd", lr=0.3, final=0.5),
               record("gmd", lr=0.3, device="cuda", api="message", output="x.json")]
    groups = group_records(records)
    assert sorted(groups) == [(("lr", 0.1),), (("lr", 0.3),)]  # placement keys only say where or how a run ran
    text = markdown_tables(records)
    assert "### Final test accuracy (%): lr=0.1" in text and "| none | 0 | 50.00 | 90.00 |" in text


def test_write_report_writes_markdown_and_each_plot_as_png_and_pdf(tmp_path):
    sweep = write_jsonl(tmp_path / "sweep", small_sweep())
    written = write_report(sweep, tmp_path / "report")
    report, figures = written[0], written[1:]
    pngs = [p for p in figures if p.suffix == ".png"]
    assert report.name == "report.md" and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert all(p.read_bytes()[:5] == b"%PDF-" for p in figures if p.suffix == ".pdf")
    heatmaps = sorted(p.name for p in pngs if p.name.startswith("heatmap_"))
    assert heatmaps == ["heatmap_bgmd.png", "heatmap_mean-sgd.png"]  # psi 0 / 0.2 (/ 0.4): one figure each
    assert "## Worst case over attacks" in report.read_text() and "## Heatmaps" in report.read_text()
    plots = [
        "clean_accuracy-vs-round", "clean_accuracy-vs-seconds", "clean_accuracy-vs-mb-up", "clean_residual-vs-round",
        "bit-flip_psi0.2_accuracy-vs-round", "bit-flip_psi0.2_accuracy-vs-seconds",
        "bit-flip_psi0.2_accuracy-vs-mb-up", "bit-flip_psi0.2_residual-vs-round",
        "bit-flip_psi0.4_accuracy-vs-round", "bit-flip_psi0.4_accuracy-vs-seconds",
        "bit-flip_psi0.4_accuracy-vs-mb-up",  # mean-sgd alone: no residual plot
    ]
    names = sorted(p.name for p in figures if not p.name.startswith("heatmap_"))
    assert names == sorted(f"{p}.{ext}" for p in plots for ext in ("png", "pdf"))
    assert not any("=" in p.name for p in figures)
    text = report.read_text()
    assert "| bit-flip | 0.2 | – | 87.00 ± 1.41 |" in text
    assert all(f"]({p.name})" in text for p in pngs) and ".pdf)" not in text
    assert "### clean" in text and "### bit-flip, ψ=0.2" in text  # the setting, not "bit-flip ψ=0"


def test_plots_are_200_dpi_and_start_at_the_initial_model(tmp_path):
    from matplotlib.image import imread

    records = small_sweep()
    for r in records:
        r["results"]["initial"] = {"accuracy": 0.1, "loss": 2.3}
    written = write_report(write_jsonl(tmp_path / "sweep", records), tmp_path / "report")
    curve = next(p for p in written if p.name == "clean_accuracy-vs-round.png")
    height, width = imread(curve).shape[:2]
    assert (width, height) == (1200, 800)  # 6 x 4 inches at 200 dpi
    import fedrobust.experiments.report as report

    runs = [r for r in records if r["config"]["strategy"] == "bgmd" and r["config"]["byzantine-fraction"] == 0.0]
    assert report._initial(runs, "accuracy").tolist() == [0.1] * len(runs)
    assert report._initial([{"results": {"rounds": []}}], "accuracy") is None


def test_the_cli_report_and_an_empty_sweep(tmp_path, capsys):
    sweep = write_jsonl(tmp_path / "sweep", small_sweep()[:2])
    assert main(["report", str(sweep), "--output", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "report.md").exists()
    with pytest.raises(ValueError, match="no finished cells"):
        write_report(write_jsonl(tmp_path / "empty", []), tmp_path / "r2")
    assert main(["report", str(tmp_path / "empty"), "--output", str(tmp_path / "r2")]) == 2
    assert capsys.readouterr().err.startswith("fedrobust: error: sweep_dir")


@pytest.mark.parametrize(
    "break_it, field",
    [
        (lambda r: r.pop("results"), "no 'results' (the run's results document)"),
        (lambda r: r["results"]["rounds"][2].update(accuracy="high"),
         "results.rounds[2].accuracy is 'high', not a number or null"),
        (lambda r: r["results"]["rounds"][0].update(round_seconds=[1]), "results.rounds[0].round_seconds is [1]"),
        (lambda r: r["config"].update({"byzantine-fraction": "0.2"}), "config.byzantine-fraction is '0.2'"),
    ],
)
def test_a_malformed_record_is_one_line_naming_the_file_line_and_field(tmp_path, capsys, break_it, field):
    records = small_sweep()
    break_it(records[1])
    write_jsonl(tmp_path / "sweep", records)
    assert main(["report", str(tmp_path / "sweep"), "--output", str(tmp_path / "report")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    path = tmp_path / "sweep" / "results.jsonl"
    assert line.startswith(f"fedrobust: error: {path}:2: cell {records[1]['cell']}: {field}"), line
    assert not (tmp_path / "report" / "report.md").exists()
