"""Free TCP ports for the processes fedrobust starts (SuperLink, SuperNodes, a private Ray head).

A port handed to a process that does not listen yet is still free, so the system may hand it out
again: :func:`free_port` takes the ports already handed out and draws until it meets another one.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

__all__ = ["free_port"]


def _draw(host: str) -> int:
    """One port the system calls free on ``host`` now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_port(host: str = "127.0.0.1", exclude: Iterable[int] = ()) -> int:
    """A TCP port that is free on ``host`` right now and not in ``exclude``.

    ``exclude`` holds ports already handed to processes that may not listen yet: the system would
    give one of them again, since it is still free.

    Examples
    --------
    >>> first = free_port()
    >>> free_port(exclude={first}) != first
    True
    """
    taken = set(exclude)
    while True:
        port = _draw(host)
        if port not in taken:
            return port
