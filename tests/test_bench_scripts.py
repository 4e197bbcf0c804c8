"""The benchmark scripts run and print the tables they promise (small sizes)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench_aggregators_out():
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_aggregators.py"), "--quick", "--repeats", "1"],
        capture_output=True, text=True, timeout=300, check=True,
    ).stdout


def test_bench_aggregators_quick(bench_aggregators_out):
    out = bench_aggregators_out
    for row in ("| mean |", "| coordinate_median |", "geometric_median (", "BGMD aggregation k=0.01d",
                "peer: Flower aggregate_median", "F = "):
        assert row in out, row
    # the GM's relative error against the float64 reference is printed and small
    err = float(out.split("rel.err ")[1].split(")")[0])
    assert err < 1e-6
    # the Gram-based rules against the plain Gram product, with a verdict per rule and size
    for n in (10, 32):
        for rule in ("geometric_median", "krum", "nnm"):
            assert f"target n = {n}: {rule} <= 1.3 x (Gram product + 2 F): " in out, (n, rule)
    assert "| nnm (f=20%) |" in out and "the product x @ x.T takes" in out


def test_bench_aggregators_times_the_geom_median_peer(bench_aggregators_out):
    pytest.importorskip("geom_median", reason="the geom_median peer needs the 'bench' extra (pip install -e '.[bench]')")
    assert "peer: geom_median" in bench_aggregators_out


def test_bench_attacks_prints_a_table_with_the_worst_case(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_attacks.py"), "--output", str(tmp_path), "--rounds", "2",
         "--strategies", "fedavg,cmd", "--attacks", "none,ipm 100", "--partitions", "iid", "--quiet"],
        capture_output=True, text=True, timeout=300, check=True,
    ).stdout
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| fedavg") or line.startswith("| cmd")}
    assert set(rows) == {"fedavg", "cmd"} and all("(ipm 100)" in line for line in rows.values())
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 4  # a rerun resumes from these


def test_bench_defenses_prints_the_composition_table_and_the_targets(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_defenses.py"), "--output", str(tmp_path), "--rounds", "2",
         "--strategies", "cmd", "--compositions", "plain,momentum+nnm", "--settings", "iid bit-flip 0.4", "--quiet"],
        capture_output=True, text=True, timeout=300, check=True,
    ).stdout
    rows = [line for line in out.splitlines() if line.startswith("| cmd |")]
    assert len(rows) == 2 and "momentum+nnm" in rows[1] and "(" in rows[1].split("|")[4]  # drop from its clean run
    assert "target iid bit-flip 0.4 within 3 points of clean:" in out
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 4  # 2 compositions x (clean, attacked)


def test_benchmark_runs_a_tuned_grid_then_publishes_tables_and_heatmaps(tmp_path):
    grid = tmp_path / "tiny.toml"
    grid.write_text(
        'strategy = ["mean-sgd", "cmd"]\ntuned = ["lr"]\nlr = [0.1, 0.3]\ndataset = "digits"\nmodel = "logistic"\n'
        'num-clients = 4\nclients-per-round = 4\nrounds = 2\nvalidation-size = 40\n'
        '[[grid]]\nattack = "none"\nbyzantine-fraction = 0.0\npartitioner = "iid"\n'
        '[[grid]]\nattack = "alie"\nbyzantine-fraction = 0.25\npartitioner = ["iid", "dirichlet"]\n'
        '[[grid]]\nattack = "none"\nbyzantine-fraction = 0.0\npartitioner = "dirichlet"\n'
    )
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--grid", str(grid), "--output", str(tmp_path / "b"),
         "--publish", str(tmp_path / "pub"), "--quiet"],
        capture_output=True, text=True, timeout=300, check=True,
    ).stdout
    assert "tiny.toml: 16 runs, tuned {'lr': [0.1, 0.3]}" in out and "16 runs in" in out
    report = (tmp_path / "pub" / "report.md").read_text()
    assert "### Tuned values chosen on the validation split (lr)" in report and "## Plots" not in report
    assert sorted(p.name for p in (tmp_path / "pub").glob("*.png")) == ["heatmap_cmd.png", "heatmap_mean-sgd.png"]
    assert (tmp_path / "b" / "report" / "report.md").exists() and (tmp_path / "b" / "tuning.json").exists()


def test_bench_engines_compares_the_plain_loop_with_the_in_process_engine():
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_engines.py"), "--rounds", "2", "--sizes", "mlp:2", "--no-ray"],
        capture_output=True, text=True, timeout=300, check=True,
        env={**os.environ, "OMP_NUM_THREADS": "2"},  # two threads: the plain loop runs at one thread too
    ).stdout
    for label in ("inprocess", "inprocess, client-threads 0", "inprocess, Message API"):  # one thread, all, one
        row = next(line for line in out.splitlines() if line.startswith(f"| {label} |"))
        assert float(row.split("|")[-2]) < 1e-6  # the same final model as the plain loop, up to summation order
    row = next(line for line in out.splitlines() if line.startswith("| plain torch loop, 1 thread |"))
    assert float(row.split("|")[-2].split()[0]) < 1e-6  # the defaults' model, from plain torch at their thread count
    defaults, all_threads = [line for line in out.splitlines() if line.startswith("| in-process, per round (mean s) |")]
    # round 1's evaluation ran beside round 2's clients at the defaults (2 x 1 thread), not at client-threads 0
    assert "evaluation beside the next round's fits" in defaults and "beside" not in all_threads
    assert "mlp/2: in-process ≤ 1.3x plain per round:" in out
    assert "mlp/2: in-process ≤ 1.3x plain at its own 1 thread(s) per round:" in out
    assert "mlp/2: in-process, client-threads 0 ≤ 1.3x plain per round:" in out
    assert "mlp/2: in-process (Message API) ≤ 1.3x plain per round:" in out
