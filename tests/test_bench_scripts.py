"""The benchmark scripts run and print the tables they promise (small sizes)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_aggregators_quick():
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_aggregators.py"), "--quick", "--repeats", "1"],
        capture_output=True, text=True, timeout=300, check=True,
    ).stdout
    for row in ("| mean |", "| coordinate_median |", "geometric_median (", "BGMD aggregation k=0.01d",
                "peer: geom_median", "peer: Flower aggregate_median", "F = "):
        assert row in out, row
    # the GM's relative error against the float64 reference is printed and small
    err = float(out.split("rel.err ")[1].split(")")[0])
    assert err < 1e-6
