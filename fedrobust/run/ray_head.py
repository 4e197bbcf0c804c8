"""A private Ray head on this machine, started once for a whole sweep (:func:`local_ray_head`).

A simulation on Flower's Ray engine starts a Ray instance of its own and shuts it down at its end
(Flower's ``RayBackend.terminate`` calls ``ray.shutdown()``): about 10 s per run on 2 CPU cores
(8 s to start, 1.5 s to stop, measured here), which dominates a sweep of short runs. A run that
*attaches* to a running cluster (run key ``ray-address``) pays about 0.1–2 s, and Flower's
``ray.shutdown()`` then only detaches it. So a Ray-engine sweep starts one head with ``ray start``
(its own ports and temp folder, so it meets no other cluster of the machine), runs every cell
attached to it, and stops exactly that head's processes at the end, found by a marker in their
environment (never ``ray stop``, which stops every Ray cluster of the user).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..core.ports import free_port
from ..core.processes import end_processes, processes_with_env

__all__ = ["local_ray_head", "MARKER"]

#: The environment variable that marks the head's processes (its value: the head's temp folder).
MARKER = "FEDROBUST_RAY_HEAD"

_PORT_FLAGS = (
    "node-manager-port", "object-manager-port", "ray-client-server-port", "dashboard-agent-listen-port",
    "dashboard-agent-grpc-port", "metrics-export-port", "runtime-env-agent-port",
)


#: Ports the head's workers may use, from a free one on.
WORKER_PORTS = 200


def head_ports(count: int) -> tuple[int, list[int]]:
    """The lowest worker port, and ``count`` distinct free ports for the head's components, none of
    them among the workers' (``ray start`` refuses a component port in the worker port range).

    Examples
    --------
    >>> low, ports = head_ports(8)
    >>> len(set(ports)) == 8 and not any(low <= p <= low + WORKER_PORTS for p in ports)
    True
    """
    low = free_port()
    ports: list[int] = []
    while len(ports) < count:
        ports.append(free_port(exclude=[*range(low, low + WORKER_PORTS + 1), *ports]))
    return low, ports


def _ray_command() -> str:
    found = Path(sys.executable).with_name("ray")
    return str(found) if found.exists() else (shutil.which("ray") or "ray")


@contextlib.contextmanager
def local_ray_head(num_cpus: int | None = None, timeout: float = 180.0) -> Iterator[str]:
    """Start a Ray head on 127.0.0.1 for the block; yield its address (``HOST:PORT``); stop it after.

    Parameters
    ----------
    num_cpus : int, optional
        CPUs the head offers (default: all of the machine's); GPUs are detected by Ray.
    timeout : float
        Seconds ``ray start`` may take.

    Raises
    ------
    RuntimeError
        ``ray start`` failed (its last output lines in the message).
    """
    # Ray's socket paths must stay short: a fresh folder directly in the system temp dir.
    temp_dir = Path(tempfile.mkdtemp(prefix="fr-ray-"))
    low, (port, *components) = head_ports(1 + len(_PORT_FLAGS))
    cmd = [
        _ray_command(), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
        "--temp-dir", str(temp_dir), "--num-cpus", str(num_cpus or os.cpu_count() or 1),
        "--include-dashboard", "false", "--disable-usage-stats",
        "--min-worker-port", str(low), "--max-worker-port", str(low + WORKER_PORTS),
    ]
    for flag, component in zip(_PORT_FLAGS, components):
        cmd += [f"--{flag}", str(component)]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", MARKER: str(temp_dir)}
    try:
        started = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if started.returncode != 0:
            tail = "\n".join((started.stdout + started.stderr).strip().splitlines()[-5:])
            raise RuntimeError(f"ray start failed (exit {started.returncode}): {tail}")
        yield f"127.0.0.1:{port}"
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        head = processes_with_env(MARKER, str(temp_dir))
        for pid in head:  # Ray's daemons do not end on their own: ask them all at once
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        end_processes(head, grace=3.0)
        shutil.rmtree(temp_dir, ignore_errors=True)
