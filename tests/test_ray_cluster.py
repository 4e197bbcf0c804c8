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
from fedrobust.run.ray_head import _PORT_FLAGS, WORKER_PORTS, head_ports
from fedrobust.run.simulation import backend_config

from _flwr_cli import pids_with_env, stop


def test_ray_address_goes_to_ray_init_and_is_validated():
    assert "address" not in backend_config(RunConfig(device="cpu"))["init_args"]
    attached = backend_config(RunConfig(device="cpu", ray_address="127.0.0.1:6390"))
    assert attached["init_args"]["address"] == "127.0.0.1:6390"
    assert attached["client_resources"] == {"num_cpus": 1.0, "num_gpus": 0.0}
    with pytest.raises(ConfigError, match="ray-address"):
        RunConfig(ray_address="127.0.0.1: 6390")


def _ray_start(temp_dir, marker):
    """Start a head with a probe resource; return ``ray start``'s outcome and the head's port.

    Distinct ports, none in the workers' range, as fedrobust's own head takes them (drawn one by one, a
    component's port once fell in the workers' range and ``ray start`` refused it).
    """
    low, (port, *components) = head_ports(1 + len(_PORT_FLAGS))
    ports = {f"--{flag}": str(component) for flag, component in zip(_PORT_FLAGS, components)}
    cmd = [
        str(Path(sys.executable).with_name("ray")), "start", "--head", "--node-ip-address", "127.0.0.1",
        "--port", str(port), "--temp-dir", str(temp_dir), "--num-cpus", "2",
        "--resources", json.dumps({"fedrobust_probe": 1}), "--include-dashboard", "false",
        "--disable-usage-stats", "--min-worker-port", str(low), "--max-worker-port", str(low + WORKER_PORTS),
        *[x for kv in ports.items() for x in kv],
    ]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "FEDROBUST_TEST_RAY": marker}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180), port


@pytest.mark.slow
def test_simulation_runs_on_an_existing_ray_cluster():
    import ray

    import fedrobust

    # Ray's socket paths must stay short: a fresh folder directly in the system temp dir.
    temp_dir = Path(tempfile.mkdtemp(prefix="fr-ray-"))
    marker = str(temp_dir)
    seen = []
    try:
        started, port = _ray_start(temp_dir, marker)
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
