"""A shorter wait in Flower's simulation feeder: applied within the block, restored after, and
the feeder still hands every node's instructions to the queue (fedrobust.run.flower_polling)."""

import queue
import threading
import time

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


def test_the_hooks_are_changed_within_the_block_and_restored_after():
    injector = vce_api.put_message_into_state
    with flower_polling(nodes=10):
        assert vce_api.put_message_into_state is not injector
    assert vce_api.put_message_into_state is injector


class _Store:
    def __init__(self):
        self.stored = []

    def store_message_res(self, message):
        self.stored.append(message)


def test_the_injector_stores_every_reply_wakes_the_grids_and_stops_soon_after_the_stop_event(monkeypatch):
    import fedrobust.run.flower_polling as fp

    rung = []
    monkeypatch.setattr(fp, "replies_stored", lambda: rung.append(len(store.stored)))
    store, replies, stop = _Store(), queue.Queue(), threading.Event()
    with flower_polling(nodes=3):
        thread = threading.Thread(target=vce_api.put_message_into_state, args=(store, replies, stop))
        thread.start()
        for reply in ("r1", "r2", "r3"):
            replies.put(reply)
        deadline = time.monotonic() + 5
        while len(store.stored) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()
        stopped = time.monotonic()
        thread.join(timeout=5)
    assert store.stored == ["r1", "r2", "r3"] and rung == [1, 2, 3]  # each reply's ring after it is stored
    assert not thread.is_alive() and time.monotonic() - stopped < 0.5  # Flower's loop: up to 1 s


def test_a_worker_waiting_for_instructions_sees_the_stop_event_soon():
    # Flower's worker loop: get(timeout=1.0) on the feeder's queue, then a look at the stop event.
    instructions, stop, seen = queue.Queue(), threading.Event(), []

    def worker():
        while not stop.is_set():
            try:
                seen.append(instructions.get(timeout=1.0))
            except queue.Empty:
                pass

    with flower_polling(nodes=3):
        feeder = threading.Thread(target=vce_api.add_messages_to_queue, args=(_State({1: ["a"]}), instructions, {1: 0}, stop))
        feeder.start()
        thread = threading.Thread(target=worker)
        thread.start()
        time.sleep(0.3)
        stop.set()
        stopped = time.monotonic()
        thread.join(timeout=5)
        feeder.join(timeout=5)
    assert seen == ["a"] and not thread.is_alive() and time.monotonic() - stopped < 0.5
