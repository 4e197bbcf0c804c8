"""Helpers for tests that drive Flower's CLI (`flwr run`, `flwr ls`) and the processes it starts.

Each test gives its runs a private ``FLWR_HOME`` and free loopback ports, so runs never collide,
and stops every process whose environment carries that ``FLWR_HOME``, by PID.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pids_with_env(name, value):
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


def _alive(pid):
    """Whether process ``pid`` still runs (a zombie, which only waits for its parent, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def stop(pids, grace=2.0):
    """SIGTERM, then SIGKILL to what is left after ``grace`` seconds (or sooner, once all are gone)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)


def flwr(args, env, timeout=120, *, cwd=ROOT, executable=None):
    """Run Flower's CLI (this venv's ``flwr``, or ``executable``) in ``cwd``."""
    executable = executable or Path(sys.executable).with_name("flwr")
    return subprocess.run(
        [str(executable), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )


def flwr_json(args, env, attempts=4, **where):
    """Run a ``flwr ... --format json`` command; retry while the local SuperLink is still starting.

    Flower 1.41's CLI waits only 15 s (``LOCAL_SUPERLINK_STARTUP_TIMEOUT``) for the SuperLink it
    launches; on a loaded machine that can pass while the SuperLink is still coming up. The CLI
    then prints ``{"success": false, ...}`` and exits 0; the SuperLink goes on starting, so a
    later attempt finds it.
    """
    for attempt in range(attempts):
        done = flwr(args, env, **where)
        assert done.returncode == 0, done.stdout + done.stderr
        payload = json.loads(done.stdout[done.stdout.index("{"):])
        if payload.get("success", True):
            return payload
        time.sleep(5)
    raise AssertionError(f"flwr {' '.join(args[:2])} failed {attempts} times: {payload}")


def wait_for_run(run_id, env, timeout, *, connection=(), **where):
    """Wait until run ``run_id`` has finished, at most ``timeout`` seconds; return its status.

    ``flwr log --stream`` returns when the run's log ends, that is when the run finishes: one CLI
    process for the whole wait, and no polling interval added to the run. The status is then read
    with ``flwr ls``, again every second while it is not yet "finished" (until ``timeout``).
    ``connection``: the SuperLink argument of ``flwr log`` and ``flwr ls`` (none: the local one).
    """
    deadline = time.monotonic() + timeout
    try:
        flwr(["log", str(run_id), *connection, "--stream"], env, timeout=timeout, **where)
    except subprocess.TimeoutExpired:
        pass
    while True:
        status = flwr_json(["ls", *connection, "--run-id", str(run_id), "--format", "json"], env, **where)["runs"][0]["status"]
        if status.startswith("finished") or time.monotonic() >= deadline:
            return status
        time.sleep(1)


def local_superlink_ports():
    """The environment that gives `flwr`'s local SuperLink two free ports of its own, distinct."""
    from fedrobust.deploy import free_port

    http = free_port()
    return {"FLWR_LOCAL_SUPERLINK_HTTP_API_PORT": str(http),
            "FLWR_LOCAL_CONTROL_API_PORT": str(free_port(exclude={http}))}


@pytest.fixture(scope="module")
def flwr_env(tmp_path_factory):
    """One private FLWR_HOME and free ports for the module's runs; every process they start is stopped."""
    home = tmp_path_factory.mktemp("flwr-home")
    env = {
        **os.environ,
        "FLWR_HOME": str(home),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        **local_superlink_ports(),
    }
    try:
        yield env
    finally:
        stop(pids_with_env("FLWR_HOME", home))
    assert pids_with_env("FLWR_HOME", home) == []
