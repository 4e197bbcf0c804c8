"""A shorter wait in Flower's simulation feeder: applied within the block, restored after, and
the feeder still hands every node's instructions to the queue (fedrobust.run.flower_polling)."""

import queue
import threading

import pytest
from flwr.server.superlink.fleet.vce import vce_api

from fedrobust.run.flower_polling import FLOWER_INTERVAL, flower_polling, poll_interval


def test_intervals_shorten_with_few_nodes_and_stay_flowers_with_many():
    assert poll_interval(1) == 0.01 and poll_interval(100) == 0.02
    assert poll_interval(500) == poll_interval(50_000) == FLOWER_INTERVAL


def test_the_hook_is_changed_within_the_block_and_restored_after():
    feeder = vce_api.add_messages_to_queue
    with flower_polling(nodes=10) as changed:
        assert changed and vce_api.add_messages_to_queue is not feeder
    assert vce_api.add_messages_to_queue is feeder
    with pytest.raises(RuntimeError), flower_polling(nodes=3):
        raise RuntimeError("boom")
    assert vce_api.add_messages_to_queue is feeder


class _State:
    """A LinkState's get_message_ins: each node's pending instructions, one at a time."""

    def __init__(self, pending):
        self.pending = {node: list(messages) for node, messages in pending.items()}
        self.lock = threading.Lock()

    def get_message_ins(self, node_id, limit):
        with self.lock:
            taken, self.pending[node_id] = self.pending[node_id][:limit], self.pending[node_id][limit:]
        return taken


def test_the_feeder_queues_every_nodes_instructions_one_per_node_and_poll():
    state = _State({1: ["a1", "a2"], 2: ["b1"], 3: []})
    out: queue.Queue = queue.Queue()
    stop = threading.Event()
    with flower_polling(nodes=3):
        thread = threading.Thread(target=vce_api.add_messages_to_queue, args=(state, out, {1: 0, 2: 1, 3: 2}, stop))
        thread.start()
        got = [out.get(timeout=5) for _ in range(3)]
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert got == ["a1", "b1", "a2"]  # Flower's order: node by node, one each poll
    assert out.empty()
