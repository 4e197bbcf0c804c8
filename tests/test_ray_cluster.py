"""A simulation attaches to a running Ray cluster (``ray-address``) instead of starting its own."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from fedrobust.config import ConfigError, RunConfig
from fedrobust.run.simulation import backend_config

from _flwr_cli import free_port, pids_with_env, stop


def test_ray_address_goes_to_ray_init_and_is_validated():
    assert "address" not in backend_config(RunConfig(device="cpu"))["init_args"]
    attached = backend_config(RunConfig(device="cpu", ray_address="127.0.0.1:6390"))
    assert attached["init_args"]["address"] == "127.0.0.1:6390"
    assert attached["client_resources"] == {"num_cpus": 1.0, "num_gpus": 0.0}
    with pytest.raises(ConfigError, match="ray-address"):
        RunConfig(ray_address="127.0.0.1: 6390")


def _ray_start(temp_dir, port, marker):
    ports = {f"--{name}": str(free_port()) for name in (
        "node-manager-port", "object-manager-port", "ray-client-server-port", "dashboard-agent-listen-port",
        "dashboard-agent-grpc-port", "metrics-export-port", "runtime-env-agent-port",
    )}
    low = free_port()
    cmd = [
        str(Path(sys.executable).with_name("ray")), "start", "--head", "--node-ip-address", "127.0.0.1",
        "--port", str(port), "--temp-dir", str(temp_dir), "--num-cpus", "2",
        "--resources", json.dumps({"fedrobust_probe": 1}), "--include-dashboard", "false",
        "--disable-usage-stats", "--min-worker-port", str(low), "--max-worker-port", str(low + 40),
        *[x for kv in ports.items() for x in kv],
    ]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "FEDROBUST_TEST_RAY": marker}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)


@pytest.mark.slow
def test_simulation_runs_on_an_existing_ray_cluster():
    import ray

    import fedrobust

    # Ray's socket paths must stay short: a fresh folder directly in the system temp dir.
    temp_dir = Path(tempfile.mkdtemp(prefix="fr-ray-"))
    marker, port = str(temp_dir), free_port()
    seen = []
    try:
        started = _ray_start(temp_dir, port, marker)
        assert started.returncode == 0, started.stdout + started.stderr
        cluster = pids_with_env("FEDROBUST_TEST_RAY", marker)
        assert cluster, "ray start left no processes"

        def during_round(record):
            # Runs in this driver while the run's clients are Ray actors: which cluster is it on?
            seen.append((ray.get_runtime_context().gcs_address, ray.cluster_resources().get("fedrobust_probe")))

        results = fedrobust.simulate(
            strategy="mean-sgd", rounds=2, num_clients=3, clients_per_round=3, lr=0.3, batch_size=64,
            device="cpu", ray_address=f"127.0.0.1:{port}", on_round=during_round,
        )
        assert [r["round"] for r in results["rounds"]] == [1, 2]
        assert results["config"]["ray-address"] == f"127.0.0.1:{port}"
        # (The cluster reports its GCS under the machine's own IP; the port is the one we chose.)
        assert [(address.rsplit(":", 1)[1], probe) for address, probe in seen] == [(str(port), 1.0)] * 2
        # The client actors were workers of that cluster: their logs are in its session folder.
        logs = list((temp_dir / "session_latest" / "logs").glob("worker-*.out"))
        # (fedrobust's actor, run.ray_transport: Flower's ClientAppActor where Flower's parts differ.)
        actors = ("SharedParametersActor", "ClientAppActor")
        assert any(a in p.read_text(errors="replace") for p in logs for a in actors), [p.name for p in logs]
    finally:
        if ray.is_initialized():
            ray.shutdown()
        # Not `ray stop`: it would stop every Ray cluster of this user on the machine.
        stop(pids_with_env("FEDROBUST_TEST_RAY", marker))
        left = pids_with_env("FEDROBUST_TEST_RAY", marker)
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert left == []
