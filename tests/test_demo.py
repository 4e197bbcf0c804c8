"""The README's demo (`fedrobust demo`): the demo grid's sweep, its table and its plot (2 rounds, no Ray)."""

import subprocess
import sys

import pytest

from fedrobust.experiments.sweep import load_grid, read_sweep



@pytest.mark.slow
def test_demo_sweeps_the_demo_grid_prints_the_table_and_writes_the_plot(tmp_path):
    out = tmp_path / "demo"
    printed = subprocess.run(
        [sys.executable, "-m", "fedrobust", "demo", "--engine", "inprocess", "--rounds", "2", "--quiet",
         "--output", str(out)],
        capture_output=True, text=True, timeout=600, check=True, cwd=tmp_path,
    ).stdout
    grid = load_grid("demo")
    assert grid["strategy"] == ["fedavg", "cmd", "gmd", "bgmd"] and grid["attack"] == "bit-flip"
    assert "| attack | ψ | fedavg | cmd | gmd | bgmd |" in printed
    assert "| bit-flip | 0.2 |" in printed and "| fedavg, ψ=0.2 |" in printed
    records = read_sweep(out)
    assert len(records) == 8 and {r["config"]["byzantine-fraction"] for r in records} == {0.0, 0.2}
    final = {(r["config"]["strategy"], r["config"]["byzantine-fraction"]): r["results"]["rounds"][-1]["accuracy"]
             for r in records}
    assert final[("fedavg", 0.0)] > 0.7 and final[("fedavg", 0.2)] < 0.3  # the attack wrecks plain averaging
    assert min(final[(s, 0.2)] for s in ("cmd", "gmd", "bgmd")) > 0.4  # and not the robust rules
    plot = out / "report" / "bit-flip_psi0.2_accuracy-vs-round.png"
    assert plot.stat().st_size > 10_000 and f"plot:   {plot}" in printed
