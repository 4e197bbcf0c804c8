"""scripts/gpu_check.sh's CPU fallback: the GPU script's three steps run (where no GPU is, as here)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_gpu_check_runs_its_three_steps_on_the_cpu(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--cpu", str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    log = (tmp_path / "gpu_check.log").read_text()
    steps = ["== 1. aggregators", "== 2. one simulation through Flower's engine", "== 3. engines",
             "gpu_check: done (cpu)"]
    assert all(step in log for step in steps) and [log.index(s) for s in steps] == sorted(log.index(s) for s in steps)
    assert "geometric_median (" in log and "krum (f=20%)" in log and "block_select k=0.1d" in log
    assert "pre: nnm" in log and "| inprocess |" in log
    results = json.loads((tmp_path / "simulation.json").read_text())
    assert results["config"]["device"] == "cpu" and results["config"]["strategy"] == "bgmd"
    assert len(results["rounds"]) == 1 and results["rounds"][0]["num_clients"] == 4
