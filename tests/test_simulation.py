"""End to end on Flower's Ray simulation engine: fedrobust.simulate and `flwr run .`.

Both runs are slow (Ray start-up, actors importing torch); they are marked ``slow`` (CI runs them).
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import fedrobust
from fedrobust.models import num_params
from fedrobust.results import read_results
from fedrobust.workload import build_model

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


def _pids_with_env(name, value):
    """Processes (of this user) whose environment has name=value: exactly those our flwr run started."""
    needle = f"{name}={value}".encode() + b"\0"
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if needle in (proc / "environ").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def _stop(pids):
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        time.sleep(2)


def _flwr(args, env, timeout=120):
    return subprocess.run(
        [str(Path(sys.executable).with_name("flwr")), *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=timeout,
    )


def _flwr_json(args, env, attempts=4):
    """Run a ``flwr ... --format json`` command; retry while the local SuperLink is still starting.

    Flower 1.41's CLI waits only 15 s (``LOCAL_SUPERLINK_STARTUP_TIMEOUT``) for the SuperLink it
    launches; on a loaded machine that can pass while the SuperLink is still coming up. The CLI
    then prints ``{"success": false, ...}`` and exits 0; the SuperLink goes on starting, so a
    later attempt finds it.
    """
    for attempt in range(attempts):
        done = _flwr(args, env)
        assert done.returncode == 0, done.stdout + done.stderr
        payload = json.loads(done.stdout[done.stdout.index("{"):])
        if payload.get("success", True):
            return payload
        time.sleep(5)
    raise AssertionError(f"flwr {' '.join(args[:2])} failed {attempts} times: {payload}")


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
        "FLWR_LOCAL_SUPERLINK_HTTP_API_PORT": str(_free_port()),
        "FLWR_LOCAL_CONTROL_API_PORT": str(_free_port()),
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
        status, deadline = "", time.monotonic() + 240
        while not status.startswith("finished") and time.monotonic() < deadline:
            time.sleep(3)
            status = _flwr_json(["ls", "--run-id", run_id, "--format", "json"], env)["runs"][0]["status"]
        log = home / "local-superlink" / "superlink.log"
        assert status == "finished:completed", log.read_text() if log.exists() else status
        results = read_results(out)
        assert [r["round"] for r in results["rounds"]] == [1, 2]
        assert results["config"]["strategy"] == "mean-sgd" and results["config"]["num-clients"] == 4
        assert all(r["num_clients"] == 3 and r["rejected_clients"] == 0 for r in results["rounds"])
    finally:
        _stop(_pids_with_env("FLWR_HOME", home))
    assert _pids_with_env("FLWR_HOME", home) == []
