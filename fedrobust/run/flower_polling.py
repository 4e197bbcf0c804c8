"""Shorter polling intervals in Flower's simulation engine while :func:`~fedrobust.run.simulation.simulate` runs.

Flower's simulation engine (1.41 and 1.42) moves messages between the ServerApp and the client
actors through an in-memory LinkState that two loops poll, each every 0.1 s: the ServerApp's
``InMemoryGrid`` sleeps ``pull_interval`` between its pulls for replies, and the engine's feeder
(``vce_api.add_messages_to_queue``) looks for new instructions for every node, then waits. A round
thus waits about 0.1-0.2 s for nothing, whatever its clients compute: on 2 CPU cores (mnist5k,
mlp, 10 clients, one gradient each) 0.333 s per round with Flower's intervals, 0.184 s with 0.01 s.

:func:`flower_polling` shortens both for the duration of a run, scaled with the number of nodes
so that a large federation is not polled more often than Flower's default allows for
(:func:`poll_interval`); only the waiting changes, never which message goes where or when a
client runs (the records of a run are the same; tests/test_flower_polling.py). Where the installed
Flower does not have these two hooks as expected, nothing is changed.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Iterator

log = logging.getLogger(__name__)

#: Flower's own interval (s) for both loops, and the shortest one used here.
FLOWER_INTERVAL = 0.1
SHORTEST_INTERVAL = 0.01
#: Seconds of interval per node polled (the feeder asks every node at every poll): 100 nodes poll
#: every 0.02 s, 500 and more at Flower's 0.1 s.
SECONDS_PER_NODE = 2e-4


def poll_interval(nodes: int) -> float:
    """The polling interval for a loop that visits ``nodes`` nodes (or waits on that many replies).

    Examples
    --------
    >>> poll_interval(10), poll_interval(100), poll_interval(10_000)
    (0.01, 0.02, 0.1)
    """
    return min(FLOWER_INTERVAL, max(SHORTEST_INTERVAL, SECONDS_PER_NODE * nodes))


def _hooks():
    """Flower's grid class and engine module when they have the expected hooks, else None."""
    try:
        from flwr.server.superlink.fleet.vce import vce_api
        from flwr.superlink.grid.inmemory_grid import InMemoryGrid
    except ImportError:
        return None
    feeder = getattr(vce_api, "add_messages_to_queue", None)
    if feeder is None or list(inspect.signature(feeder).parameters) != ["state", "queue", "nodes_mapping", "f_stop"]:
        return None
    if "pull_interval" not in inspect.signature(InMemoryGrid.__init__).parameters:
        return None
    return InMemoryGrid, vce_api


@contextlib.contextmanager
def flower_polling(nodes: int, clients_per_round: int) -> Iterator[bool]:
    """Within the block, Flower's in-memory simulation polls at :func:`poll_interval`.

    The feeder's interval follows ``nodes`` (the SuperNodes it visits at every poll), the grid's
    follows ``clients_per_round`` (each legacy client proxy pulls for its own reply). Yields
    whether Flower's hooks were found and changed; they are restored on leaving.
    """
    hooks = _hooks()
    if hooks is None:
        log.debug("Flower's simulation polling hooks are not as expected: its own intervals are kept")
        yield False
        return
    grid_class, vce_api = hooks
    feeder_wait, grid_wait = poll_interval(nodes), poll_interval(clients_per_round)
    original_init, original_feeder = grid_class.__init__, vce_api.add_messages_to_queue

    def init(self, state_factory, pull_interval: float = grid_wait) -> None:
        original_init(self, state_factory, pull_interval=pull_interval)

    def add_messages_to_queue(state, queue, nodes_mapping, f_stop) -> None:
        # Flower's loop, with its wait shortened.
        while not f_stop.is_set():
            for node_id in nodes_mapping.keys():
                for message in state.get_message_ins(node_id=node_id, limit=1):
                    queue.put(message)
            f_stop.wait(feeder_wait)

    grid_class.__init__, vce_api.add_messages_to_queue = init, add_messages_to_queue
    try:
        yield True
    finally:
        grid_class.__init__, vce_api.add_messages_to_queue = original_init, original_feeder
