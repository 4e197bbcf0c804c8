"""The processes of a deployment: one job, starting, watching, finding and stopping them.

Processes are found by the ``FEDROBUST_DEPLOYMENT`` marker in their environment (``/proc``),
stopped with SIGTERM then SIGKILL, started with their output in a log file, and watched through
their log tails, the SuperLink's ``/health`` endpoint and the ``flwr`` CLI.

See Also
--------
fedrobust.deploy.lifecycle : ``up`` and ``down``, which use these.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .commands import MARKER_ENV, deployment_env

if TYPE_CHECKING:
    from .lifecycle import Deployment

__all__ = ["deployment_pids", "stop_pids", "online_supernodes"]


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def deployment_pids(run_dir: str | os.PathLike[str]) -> list[int]:
    """PIDs of the live processes (of this user) that carry this deployment's marker."""
    needle = f"{MARKER_ENV}={Path(run_dir).resolve()}".encode() + b"\0"
    me = os.getpid()
    return sorted(
        int(p.name) for p in Path("/proc").glob("[0-9]*")
        if int(p.name) != me and needle in _environ(int(p.name))
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone once reaped
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return Path(f"/proc/{pid}").exists() and "Z" not in _proc_state(pid)


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _signal(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def stop_pids(pids: Iterable[int], grace: float = 10.0) -> list[int]:
    """SIGTERM ``pids``, wait up to ``grace`` seconds, SIGKILL what is left; return those still alive."""
    pids = list(pids)
    _signal(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    left = [p for p in pids if _alive(p)]
    _signal(left, signal.SIGKILL)
    time.sleep(0.5)
    return [p for p in left if _alive(p)]


def _spawn(name: str, cmd: list[str], env: dict[str, str], log: Path, dep: Deployment) -> subprocess.Popen:
    with log.open("ab") as out:
        out.write(f"$ {shlex.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            cmd, env=env, cwd=dep.run_dir, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    dep.pids[name], dep.logs[name] = proc.pid, str(log)
    dep.save()
    return proc


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _flwr_cli(args: list[str], env: dict[str, str], timeout: float = 120.0) -> dict[str, Any]:
    flwr = Path(sys.executable).with_name("flwr")
    done = subprocess.run(
        [str(flwr) if flwr.exists() else "flwr", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    text = done.stdout
    try:
        payload = json.loads(text[text.index("{"):])
    except ValueError:
        payload = {"success": False, "error-message": (text + done.stderr).strip()[-2000:]}
    if done.returncode != 0 or not payload.get("success", True):
        raise RuntimeError(f"flwr {' '.join(args[:2])} failed: {payload.get('error-message', payload)}")
    return payload


def _wait_superlink(address: str, ca_cert: Path, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"flower-superlink exited with code {proc.returncode}:\n{_tail(log)}")
        try:
            if httpx.get(f"https://{address}/health", verify=str(ca_cert), timeout=2.0).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"flower-superlink did not answer on {address} within {timeout:.0f} s:\n{_tail(log)}")


def online_supernodes(dep: Deployment) -> int:
    """How many SuperNodes the SuperLink reports online (``flwr supernode ls``)."""
    env = deployment_env(dep.run_dir, dep.flwr_home)
    nodes = _flwr_cli(["supernode", "ls", dep.connection, "--format", "json"], env).get("nodes", [])
    return sum(1 for n in nodes if str(n.get("status", "")).lower() == "online")
