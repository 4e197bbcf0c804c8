"""A Grid that waits for replies in pauses that grow with the wait: :class:`PollingGrid`.

Flower's grids wait for replies in fixed pauses between pulls: 3 s for the SuperLink's grid (a
deployment, and ``flwr run`` simulations), 0.1 s for the in-memory grid of ``run_simulation``. A
round whose clients answer in 50 ms thus lasts up to 3 s. fedrobust's ServerApps (both APIs) give
their strategies this wrapper around such a grid of Flower's (:class:`PollingServerApp`): a pause is a tenth of the time
the youngest waiting call has waited, at least 10 ms and at most the wrapped grid's own pause, and
the calls waiting at the same time share their pulls (a legacy round waits for each of its clients
in a thread of its own: one pull asks for all their replies). A long round is polled as Flower
polls it; a short one ends within about a tenth of its length after its last reply. Only the
waiting changes: the same messages are pushed and pulled.
Any other grid (fedrobust's :class:`~fedrobust.messageapi.LocalGrid`, a grid of the user's) is
handed over as it is: only Flower's loop is known to be a loop of fixed pauses.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections.abc import Iterable
from typing import Any

from flwr.app import Context, Message
from flwr.serverapp import Grid, ServerApp

#: The shortest pause (s) between two pulls.
SHORTEST_PAUSE = 0.01
#: A pause is at most this fraction of the time the youngest waiting call has waited.
PAUSE_FRACTION = 0.1
#: The wrapped grid's own pause when it has no ``pull_interval`` (the SuperLink's grid: 3 s).
FLOWER_GRPC_PAUSE = 3.0


def _flower_polling_grids() -> tuple[type, ...]:
    """Flower's grids whose ``send_and_receive`` pulls in fixed pauses (those importable here)."""
    found = []
    for module, name in (("flwr.superlink.grid.http_grid", "HttpGrid"), ("flwr.superlink.grid.inmemory_grid", "InMemoryGrid")):
        try:
            found.append(getattr(__import__(module, fromlist=[name]), name))
        except (ImportError, AttributeError):
            pass
    return tuple(found)


#: The PollingGrids of this process, which :func:`replies_stored` wakes (a grid is added in the
#: ServerApp's thread while the injector's thread may be ringing: both under the lock).
_GRIDS: weakref.WeakSet = weakref.WeakSet()
_GRIDS_LOCK = threading.Lock()


def replies_stored() -> None:
    """Tell the waiting calls of this process's PollingGrids that a reply was stored: each pulls
    at once instead of at the end of its pause (fedrobust's injector of Flower's simulation engine
    calls it, :mod:`fedrobust.run.flower_polling`). Only when pulls happen changes."""
    with _GRIDS_LOCK:
        grids = list(_GRIDS)
    for grid in grids:
        grid.ring()


def polls_in_fixed_pauses(grid: Grid) -> bool:
    """Whether ``grid``'s ``send_and_receive`` is one of Flower's own (a loop of fixed pauses)."""
    method = type(grid).send_and_receive
    return any(method is cls.send_and_receive for cls in _flower_polling_grids())


def pause(waited: float, longest: float) -> float:
    """Seconds to sleep before the next pull, when the youngest call waiting has waited ``waited`` seconds.

    Examples
    --------
    >>> pause(0.0, 3.0), pause(1.0, 3.0), pause(100.0, 3.0), pause(100.0, 0.1)
    (0.01, 0.1, 3.0, 0.1)
    """
    return min(longest, max(SHORTEST_PAUSE, PAUSE_FRACTION * waited))


class PollingGrid(Grid):
    """``grid`` with :meth:`send_and_receive` polling in growing pauses; everything else is ``grid``'s.

    The calls waiting at the same time (a legacy round waits for each client in a thread of its
    own) share their pulls: one of them pulls the replies of all, and a pull happens at most every
    :func:`pause` of the youngest call's wait, however many calls wait. A reply stored where the
    grid's runtime says so (:func:`replies_stored`, :meth:`ring`) is pulled at once.

    Parameters
    ----------
    grid : flwr.serverapp.Grid
        The grid a ServerApp was given; its own ``send_and_receive`` is not called.
    """

    def __init__(self, grid: Grid) -> None:
        self.wrapped = grid
        self.longest = float(getattr(grid, "pull_interval", FLOWER_GRPC_PAUSE))
        self._changed = threading.Condition()
        self._waiting: dict[str, float] = {}  # message id -> when its call began, until its reply is pulled
        self._arrived: dict[str, Message] = {}  # message id -> its reply, until its call takes it
        self._pulling = False
        self._last_pull = -math.inf
        self._rung = False  # a reply was stored since the last pull began: the next pull is due now
        with _GRIDS_LOCK:
            _GRIDS.add(self)

    def ring(self) -> None:
        """A reply was stored: the next pull is due now (after the one under way, if any)."""
        with self._changed:
            self._rung = True
            self._changed.notify_all()

    # Grid's abstract methods, and anything else, are the wrapped grid's.
    def set_run(self, run: Any) -> None:
        self.wrapped.set_run(run)

    @property
    def run(self) -> Any:
        return self.wrapped.run

    def create_message(self, *args: Any, **kwargs: Any) -> Message:  # type: ignore[override]
        return self.wrapped.create_message(*args, **kwargs)

    def get_node_ids(self) -> Iterable[int]:
        return self.wrapped.get_node_ids()

    def get_nodes(self) -> Iterable[Any]:
        return self.wrapped.get_nodes()

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self.wrapped.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return self.wrapped.pull_messages(message_ids)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        """Push ``messages``, then wait for their replies until all are in or ``timeout`` seconds pass."""
        mine = list(self.push_messages(messages))
        del messages
        started = time.monotonic()
        pending = set(mine)
        replies: list[Message] = []
        with self._changed:
            self._waiting.update(dict.fromkeys(mine, started))
        try:
            while True:
                with self._changed:
                    for message_id in [m for m in pending if m in self._arrived]:
                        replies.append(self._arrived.pop(message_id))
                        pending.discard(message_id)
                    now = time.monotonic()
                    left = None if timeout is None else timeout - (now - started)
                    if not pending or (left is not None and left <= 0):
                        return replies
                    due = -math.inf if self._rung else self._last_pull + pause(now - max(self._waiting.values()), self.longest)
                    if self._pulling or now < due:  # another call pulls, or not yet
                        wait = None if self._pulling else due - now
                        if left is not None:
                            wait = left if wait is None else min(wait, left)
                        self._changed.wait(wait)
                        continue
                    self._pulling, self._rung = True, False
                    wanted = set(self._waiting)  # the replies not pulled yet
                received: list[Message] = []
                try:
                    # self.pull_messages, looked up at every pull: an interrupt replaces it (run.interrupt.close_grids)
                    received = list(self.pull_messages(wanted))
                finally:
                    with self._changed:
                        self._pulling = False
                        self._last_pull = time.monotonic()
                        for reply in received:
                            # A reply is pulled once: Flower's grid then deletes its instruction, and
                            # asking for it again gets a "Message Unavailable" error in its place.
                            if self._waiting.pop(reply.metadata.reply_to_message_id, None) is not None:
                                self._arrived[reply.metadata.reply_to_message_id] = reply
                        self._changed.notify_all()
        finally:
            with self._changed:
                for message_id in mine:
                    self._waiting.pop(message_id, None)
                    self._arrived.pop(message_id, None)


class PollingServerApp(ServerApp):
    """Flower's ServerApp, whose ``main`` or legacy components run on a :class:`PollingGrid` around
    the grid the runtime hands it when that is one of Flower's own (:func:`polls_in_fixed_pauses`),
    on the grid itself otherwise (fedrobust's ServerApps of both APIs are these)."""

    def __call__(self, grid: Grid, context: Context) -> None:
        super().__call__(PollingGrid(grid) if polls_in_fixed_pauses(grid) else grid, context)
