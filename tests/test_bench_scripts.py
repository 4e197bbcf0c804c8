"""The benchmark scripts run and print the tables they promise (small sizes)."""

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
