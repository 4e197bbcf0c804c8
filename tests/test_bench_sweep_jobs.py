"""scripts/bench_sweep_jobs.py: one job against two on the same grid, each sweep a fresh `fedrobust sweep`."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_short_run_times_both_and_finds_the_same_records(capsys):
    spec = importlib.util.spec_from_file_location("bench_sweep_jobs", ROOT / "scripts" / "bench_sweep_jobs.py")
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_sweep_jobs"] = bench
    spec.loader.exec_module(bench)
    bench.main(["--rounds", "1", "--repeat", "1"])
    out = capsys.readouterr().out
    assert re.search(r"^1 job\(s\): [\d.]+ s \(fastest [\d.]+ s\)$", out, re.M)
    assert re.search(r"^2 job\(s\): [\d.]+ s \(fastest [\d.]+ s\)$", out, re.M)
    assert re.search(r"2 jobs are [\d.]+x one job \(fastest of 1 each\); the same records in every sweep: True", out)
