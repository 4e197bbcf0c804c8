"""The processes below this one: :func:`descendants` lists them, :func:`end_processes` ends them.

A simulation on Ray starts a private cluster (GCS server, raylet, dashboard agents) whose client
actors are children of the raylet; once Ray is shut down the actors notice on their own, seconds
later. fedrobust lists the tree while the run is live (the actors lose their parent on shutdown)
and, after an interrupt, ends whatever of it is still running. Linux only (it reads ``/proc``);
elsewhere the list is empty.

Examples
--------
>>> import os
>>> os.getpid() in descendants()
False
>>> end_processes({}, grace=0.0)
[]
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping

__all__ = ["descendants", "end_processes", "processes_with_env"]

_PROC = "/proc"


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of ``pid``, or None when it is gone."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as fh:
            text = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = text.rsplit(")", 1)[-1].split()  # the name, in parentheses, may hold spaces
    return fields[0], int(fields[1]), int(fields[19])


def descendants(pid: int | None = None) -> dict[int, int]:
    """Every live process below ``pid`` (default: this one), as pid → start time (clock ticks).

    The start time tells a process from a later one that got the same pid.
    """
    root = os.getpid() if pid is None else pid
    try:
        entries = [int(name) for name in os.listdir(_PROC) if name.isdigit()]
    except OSError:
        return {}
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in entries:
        stat = _stat(entry)
        if stat is not None and stat[0] != "Z":
            children.setdefault(stat[1], []).append((entry, stat[2]))
    found: dict[int, int] = {}
    todo = [root]
    while todo:
        for child, started in children.get(todo.pop(), ()):
            if child not in found:
                found[child] = started
                todo.append(child)
    return found


def processes_with_env(name: str, value: str) -> dict[int, int]:
    """Every live process (of this user) whose environment holds ``name=value``, as pid → start time.

    Processes started with a marker in their environment pass it on to their children, so this
    finds a whole tree even after its parents have gone (a daemonised Ray head, say).
    """
    needle = f"{name}={value}".encode() + b"\0"
    found: dict[int, int] = {}
    try:
        entries = [int(entry) for entry in os.listdir(_PROC) if entry.isdigit()]
    except OSError:
        return found
    for pid in entries:
        try:
            with open(f"{_PROC}/{pid}/environ", "rb") as fh:
                if needle not in fh.read():
                    continue
        except OSError:  # gone, or another user's
            continue
        stat = _stat(pid)
        if stat is not None and stat[0] != "Z":
            found[pid] = stat[2]
    return found


def _alive(pid: int, started: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z" and stat[2] == started


def end_processes(processes: Mapping[int, int], grace: float = 3.0) -> list[int]:
    """Wait up to ``grace`` seconds for ``processes`` (from :func:`descendants`) to exit, then kill the rest.

    Survivors get SIGTERM, then SIGKILL a second later. Zombies count as exited; those that are
    children of this process are reaped.

    Returns
    -------
    list of int
        The pids that had to be signalled.
    """
    deadline = time.monotonic() + grace
    left = {p: s for p, s in processes.items() if _alive(p, s)}
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = {p: s for p, s in left.items() if _alive(p, s)}
    signalled = sorted(left)
    for sig, wait in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 1.0)):
        for pid in left:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        until = time.monotonic() + wait
        while left and time.monotonic() < until:
            time.sleep(0.05)
            left = {p: s for p, s in left.items() if _alive(p, s)}
        if not left:
            break
    for pid in processes:
        try:
            os.waitpid(pid, os.WNOHANG)
        except OSError:  # not a child of this process, or reaped already
            pass
    return signalled
