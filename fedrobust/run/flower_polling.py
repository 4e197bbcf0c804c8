"""A shorter polling interval in Flower's simulation engine while :func:`~fedrobust.run.simulation.simulate` runs.

Flower's simulation engine (1.41 and 1.42) hands instructions from the in-memory LinkState to the
client actors in a feeder loop (``vce_api.add_messages_to_queue``) that looks for new messages
for every node, then waits 0.1 s: every round waits up to 0.1 s before its first client starts.
(The ServerApp's own wait for the replies is shortened by :class:`~fedrobust.run.polling_grid.PollingGrid`,
which the injector below wakes at every reply it stores.)

:func:`flower_polling` shortens the feeder's wait for the duration of a run, scaled with the
number of nodes so that a large federation is not polled more often than Flower's default allows
for (:func:`poll_interval`). It also shortens the end of a run: Flower's workers wait for the next
instruction, and its injector for the next reply, in turns of 1 s between looks at the stop event,
so the runtime stopped up to 1 s after the ServerApp's last round; within the block they look
every :data:`STOP_CHECK` s. Only the waiting changes, never which message goes where or when a
client runs (the records of a run are the same). Where the installed Flower does not have these
hooks as expected, nothing is changed. Together with the PollingGrid, on 2 CPU cores (mnist5k, mlp,
10 clients, one gradient each): 0.333 s per round with Flower's intervals, 0.18 s with these.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import queue
from queue import Empty
from collections.abc import Iterator

from .polling_grid import replies_stored

log = logging.getLogger(__name__)

#: Flower's own interval (s), and the shortest one used here.
FLOWER_INTERVAL = 0.1
SHORTEST_INTERVAL = 0.01
#: Seconds of interval per node polled (the feeder asks every node at every poll): 100 nodes are
#: polled every 0.02 s, 500 and more at Flower's 0.1 s.
SECONDS_PER_NODE = 2e-4
#: Seconds between a waiting worker's or injector's looks at the stop event (Flower's: 1 s).
STOP_CHECK = 0.05


def poll_interval(nodes: int) -> float:
    """The feeder's interval for a federation of ``nodes`` nodes.

    Examples
    --------
    >>> poll_interval(10), poll_interval(100), poll_interval(10_000)
    (0.01, 0.02, 0.1)
    """
    return min(FLOWER_INTERVAL, max(SHORTEST_INTERVAL, SECONDS_PER_NODE * nodes))


def _engine():
    """Flower's engine module when its feeder and injector have the expected signatures, else None."""
    try:
        from flwr.server.superlink.fleet.vce import vce_api
    except ImportError:
        return None
    expected = {
        "add_messages_to_queue": ["state", "queue", "nodes_mapping", "f_stop"],
        "put_message_into_state": ["state", "queue", "f_stop"],
    }
    for name, parameters in expected.items():
        hook = getattr(vce_api, name, None)
        if hook is None or list(inspect.signature(hook).parameters) != parameters:
            return None
    return vce_api


def wakeful(messages: queue.Queue) -> queue.Queue:
    """``messages``, whose ``get`` with a timeout longer than :data:`STOP_CHECK` waits at most that
    long (then raises ``queue.Empty``, as a timed-out ``get`` does): Flower's worker loop, which
    waits 1 s per ``get``, then looks at its stop event that often.

    Examples
    --------
    >>> import queue, time
    >>> q = wakeful(queue.Queue())
    >>> start = time.monotonic()
    >>> try:
    ...     q.get(timeout=1.0)
    ... except queue.Empty:
    ...     time.monotonic() - start < 0.5
    True
    """
    get = messages.get

    def short_get(block: bool = True, timeout: float | None = None):
        if block and timeout is not None and timeout > STOP_CHECK:
            timeout = STOP_CHECK
        return get(block, timeout)

    messages.get = short_get  # type: ignore[method-assign]
    return messages


@contextlib.contextmanager
def flower_polling(nodes: int) -> Iterator[bool]:
    """Within the block, Flower's simulation feeder polls at :func:`poll_interval` ``(nodes)``.

    Yields whether Flower's hook was found and changed; it is restored on leaving.
    """
    vce_api = _engine()
    if vce_api is None:
        log.debug("Flower's simulation feeder is not as expected: its own interval is kept")
        yield False
        return
    wait = poll_interval(nodes)
    original = vce_api.add_messages_to_queue, vce_api.put_message_into_state

    def add_messages_to_queue(state, queue, nodes_mapping, f_stop) -> None:
        # Flower's loop: each node's next instruction into the queue, then a (shorter) wait. The
        # workers wait on this queue: they look at f_stop every STOP_CHECK s.
        wakeful(queue)
        while not f_stop.is_set():
            for node_id in nodes_mapping.keys():
                for message in state.get_message_ins(node_id=node_id, limit=1):
                    queue.put(message)
            f_stop.wait(wait)

    def put_message_into_state(state, queue, f_stop) -> None:
        # Flower's loop: every reply into the LinkState, looking at f_stop every STOP_CHECK s.
        while not f_stop.is_set():
            try:
                reply = queue.get(timeout=STOP_CHECK)
            except Empty:
                continue
            state.store_message_res(reply)
            replies_stored()  # the ServerApp's PollingGrid pulls it now, not at the end of its pause

    vce_api.add_messages_to_queue, vce_api.put_message_into_state = add_messages_to_queue, put_message_into_state
    try:
        yield True
    finally:
        vce_api.add_messages_to_queue, vce_api.put_message_into_state = original
