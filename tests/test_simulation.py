"""End to end on Flower's Ray simulation engine: fedrobust.simulate and `flwr run .`.

Both runs are slow (Ray start-up, actors importing torch); they are marked ``slow`` (CI runs them).
"""

import json
import os
import sys
from pathlib import Path

import pytest

import fedrobust
from fedrobust.models import num_params
from fedrobust.core.results import read_results
from fedrobust.run.build import build_model

from _flwr_cli import flwr_json as _flwr_json, local_superlink_ports as _local_superlink_ports, pids_with_env as _pids_with_env, stop as _stop
from _flwr_cli import wait_for_run as _wait_for_run

ROOT = Path(__file__).resolve().parents[1]
RECORD_KEYS = {
    "round", "accuracy", "loss", "bytes_up", "bytes_down", "aggregation_seconds", "round_seconds",
    "num_clients", "rejected_clients", "failed_clients",
}


@pytest.mark.slow
def test_fedavg_reaches_90_percent_on_mnist5k(tmp_path):
    seen = []
    out = tmp_path / "fedavg.json"
    results = fedrobust.simulate(
        strategy="fedavg", dataset="mnist5k", model="mlp", num_clients=10, clients_per_round=10,
        rounds=20, local_steps=10, lr=0.1, batch_size=32, output=str(out), on_round=seen.append,
    )
    rounds = results["rounds"]
    assert [r["round"] for r in rounds] == list(range(1, 21)) == [r.round for r in seen]
    assert set(rounds[0]) >= RECORD_KEYS
    assert rounds[-1]["accuracy"] >= 0.90, [r["accuracy"] for r in rounds]
    assert results["initial"]["accuracy"] < 0.3  # it learned, it did not start there
    d = num_params(build_model(fedrobust.config.RunConfig()))
    assert all(r["bytes_up"] == r["bytes_down"] == 10 * 4 * d for r in rounds)
    assert all(r["rejected_clients"] == r["failed_clients"] == 0 and r["num_clients"] == 10 for r in rounds)
    assert results["config"]["strategy"] == "fedavg" and results["config"]["local-steps"] == 10
    assert read_results(out) == json.loads(json.dumps(results))


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the processes it started through /proc")
def test_flwr_run_dot_completes_offline(tmp_path):
    home = tmp_path / "flwr-home"
    out = tmp_path / "flwr-run.json"
    env = {
        **os.environ,
        "FLWR_HOME": str(home),
        # `flwr run` starts `flower-superlink` by name: it must be on PATH even without an activated venv.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        **_local_superlink_ports(),
    }
    try:
        run_id = _flwr_json(
            [
                "run", ".", "--format", "json",
                "--run-config", f"strategy='mean-sgd' rounds=2 num-clients=4 clients-per-round=3 output='{out}'",
                "--federation-config", "num-supernodes=4 client-resources-num-cpus=1",
            ],
            env,
        )["run-id"]
        status = _wait_for_run(run_id, env, 240)
        log = home / "local-superlink" / "superlink.log"
        assert status == "finished:completed", log.read_text() if log.exists() else status
        results = read_results(out)
        assert [r["round"] for r in results["rounds"]] == [1, 2]
        assert results["config"]["strategy"] == "mean-sgd" and results["config"]["num-clients"] == 4
        assert all(r["num_clients"] == 3 and r["rejected_clients"] == 0 for r in results["rounds"])
    finally:
        _stop(_pids_with_env("FLWR_HOME", home))
    assert _pids_with_env("FLWR_HOME", home) == []
