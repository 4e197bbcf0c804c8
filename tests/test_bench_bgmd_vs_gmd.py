"""scripts/bench_bgmd_vs_gmd.py runs and prints its ratio table (quick mode)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_bgmd_vs_gmd_quick():
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_bgmd_vs_gmd.py"), "--quick"],
        capture_output=True, text=True, timeout=300, check=True,
    ).stdout
    assert "| gmd | " in out and "| bgmd rho=0.01 no M |" in out
    gmd_row = next(line for line in out.splitlines() if line.startswith("| gmd |"))
    assert gmd_row.split("|")[7].strip() == "1.00x"  # gmd's aggregation speed-up over itself
