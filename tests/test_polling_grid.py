"""PollingGrid: the replies a grid's send_and_receive returns, pulled in pauses that grow with the
wait (fedrobust.run.polling_grid); fedrobust's ServerApps hand it to their strategies."""

import threading
import time

import pytest
from flwr.app import Context, RecordDict
from flwr.serverapp import Grid

from fedrobust.messageapi import make_server_app as message_server_app
from fedrobust.run.app import make_server_app as legacy_server_app
from fedrobust.run.interrupt import RunStopped, close_grids
from fedrobust.run.polling_grid import PollingGrid, PollingServerApp, pause, polls_in_fixed_pauses


class _Reply:
    def __init__(self, to):
        self.metadata = type("M", (), {"reply_to_message_id": to})()


class DelayedGrid(Grid):
    """A grid whose reply to message ``i`` can be pulled ``delays[i]`` seconds after the push; it
    counts the pulls. Flower's own grids sleep ``pull_interval`` (here 3 s) between pulls."""

    pull_interval = 3.0

    def __init__(self, delays):
        self.delays, self.pulls, self.pushed_at = delays, 0, None

    def set_run(self, run):
        pass

    @property
    def run(self):
        return None

    def create_message(self, *args, **kwargs):
        raise NotImplementedError

    def get_node_ids(self):
        return [1, 2, 3]

    def push_messages(self, messages):
        self.pushed_at = time.monotonic()
        return [str(i) for i, _ in enumerate(messages)]

    def pull_messages(self, message_ids):
        self.pulls += 1
        ready = time.monotonic() - self.pushed_at
        return [_Reply(m) for m in message_ids if self.delays[int(m)] <= ready]

    def send_and_receive(self, messages, *, timeout=None):
        raise AssertionError("PollingGrid pulls itself")


def test_pauses_grow_with_the_wait_up_to_the_wrapped_grids_own():
    assert pause(0.0, 3.0) == 0.01 and pause(0.5, 3.0) == pytest.approx(0.05)
    assert pause(60.0, 3.0) == 3.0 and pause(60.0, 0.1) == 0.1


class SharedGrid(DelayedGrid):
    """Many calls at once: message ``"<call>-<i>"``'s reply is ready ``delays[call]`` seconds after
    its push; records the ids each pull asked for."""

    def __init__(self, delays):
        super().__init__(delays)
        self.pushed, self.asked, self._lock = {}, [], threading.Lock()

    def push_messages(self, messages):
        with self._lock:
            ids = [str(m) for m in messages]
            self.pushed.update(dict.fromkeys(ids, time.monotonic()))
            return ids

    def pull_messages(self, message_ids):
        with self._lock:
            self.pulls += 1
            self.asked.append(set(message_ids))
            now = time.monotonic()
            return [_Reply(m) for m in message_ids if now - self.pushed[m] >= self.delays[int(m.split("-")[0])]]


def test_calls_waiting_together_share_their_pulls_and_each_gets_its_own_replies():
    # A legacy round: one send_and_receive per client, each in its own thread.
    delays = [0.02 * (i % 5) + 0.2 for i in range(20)]
    grid = PollingGrid(SharedGrid(delays))
    got, took = {}, {}

    def call(i):
        start = time.monotonic()
        got[i] = sorted(r.metadata.reply_to_message_id for r in grid.send_and_receive([f"{i}-a", f"{i}-b"]))
        took[i] = time.monotonic() - start

    threads = [threading.Thread(target=call, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert got == {i: [f"{i}-a", f"{i}-b"] for i in range(20)}
    assert all(delays[i] <= took[i] < delays[i] + 0.15 for i in range(20)), took
    # One pull asks for every call's replies: about one pull per pause (>= 10 ms), not one per call.
    assert grid.wrapped.pulls <= 40, grid.wrapped.pulls
    assert max(len(ids) for ids in grid.wrapped.asked) >= 30
    assert not grid._waiting and not grid._arrived  # nothing is kept after the calls


class _Unavailable(_Reply):
    """The error reply Flower's link state gives for an instruction it no longer has."""


class PullOnceGrid(SharedGrid):
    """Flower's in-memory grid's terms: a reply is pulled once, and its instruction is then
    deleted, so asking for it again gets a "Message Unavailable" error reply in its place."""

    def __init__(self, delays):
        super().__init__(delays)
        self.delivered, self.asked_again = set(), []

    def pull_messages(self, message_ids):
        asked = set(message_ids)
        with self._lock:
            again = asked & self.delivered
            self.asked_again.extend(again)
        replies = super().pull_messages(asked - again)
        with self._lock:
            self.delivered.update(r.metadata.reply_to_message_id for r in replies)
        return replies + [_Unavailable(m) for m in again]


def test_a_reply_is_pulled_once_and_no_call_gets_an_unavailable_error_in_its_place():
    # Flower's grid deletes an instruction once its reply is pulled: asking again gets an error.
    grid = PollingGrid(PullOnceGrid([0.0, 0.1, 0.3]))
    replies = grid.send_and_receive(["0-a", "1-a", "2-a"])
    assert sorted(type(r).__name__ for r in replies) == ["_Reply"] * 3
    assert grid.wrapped.asked_again == []
    # A legacy round: a thread per client, replies coming in while other calls pull.
    delays = [0.002 * (i % 17) for i in range(60)]
    grid = PollingGrid(PullOnceGrid(delays))
    got = {}

    def call(i):
        got[i] = [type(r).__name__ for r in grid.send_and_receive([f"{i}-a"])]

    threads = [threading.Thread(target=call, args=(i,)) for i in range(60)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert got == {i: ["_Reply"] for i in range(60)} and grid.wrapped.asked_again == []


def test_a_call_that_times_out_leaves_the_others_waiting():
    grid = PollingGrid(SharedGrid([0.2, 60.0]))
    out = {}

    def call(i, timeout):
        out[i] = [r.metadata.reply_to_message_id for r in grid.send_and_receive([f"{i}-a"], timeout=timeout)]

    threads = [threading.Thread(target=call, args=(0, None)), threading.Thread(target=call, args=(1, 0.05))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert out == {0: ["0-a"], 1: []}


def test_replies_come_back_soon_after_the_last_one_and_pulls_stay_few():
    grid = PollingGrid(DelayedGrid([0.05, 0.3, 1.0]))
    start = time.monotonic()
    replies = grid.send_and_receive(["a", "b", "c"])
    took = time.monotonic() - start
    assert sorted(r.metadata.reply_to_message_id for r in replies) == ["0", "1", "2"]
    assert 1.0 <= took < 1.25  # Flower's 3 s pause would have ended it at 3 s
    assert grid.wrapped.pulls < 40  # a pause of at least a tenth of the wait: not one pull per 10 ms


def test_a_timeout_returns_what_came_in():
    grid = PollingGrid(DelayedGrid([0.0, 5.0]))
    start = time.monotonic()
    replies = grid.send_and_receive(["a", "b"], timeout=0.3)
    assert [r.metadata.reply_to_message_id for r in replies] == ["0"]
    assert 0.3 <= time.monotonic() - start < 0.5


def test_the_rest_is_the_wrapped_grids():
    inner = DelayedGrid([0.0])
    grid = PollingGrid(inner)
    assert grid.get_node_ids() == [1, 2, 3] and grid.delays is inner.delays and grid.longest == 3.0


def test_an_interrupt_stops_a_waiting_call():
    grid = PollingGrid(DelayedGrid([60.0]))
    raised = []

    def wait():
        try:
            grid.send_and_receive(["a"])
        except RunStopped as err:
            raised.append(err)

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.2)
    assert close_grids() == 1
    thread.join(timeout=5)
    assert not thread.is_alive() and raised


@pytest.mark.parametrize("make", [legacy_server_app, message_server_app], ids=["legacy", "message"])
def test_fedrobusts_server_apps_are_polling_server_apps(make):
    assert isinstance(make(), PollingServerApp)


class _StateFactory:  # what InMemoryGrid asks of its state factory when it is built (not used here)
    def state(self):
        return None


def test_only_flowers_own_grids_pull_in_fixed_pauses():
    from flwr.superlink.grid.inmemory_grid import InMemoryGrid

    from fedrobust.messageapi import LocalGrid

    assert polls_in_fixed_pauses(InMemoryGrid(state_factory=_StateFactory()))
    assert not polls_in_fixed_pauses(DelayedGrid([0.0]))
    assert not polls_in_fixed_pauses(LocalGrid(lambda m, c: m, 2))


def test_the_server_app_hands_main_a_polling_grid_around_flowers_grid_and_any_other_grid_as_it_is():
    from flwr.superlink.grid.inmemory_grid import InMemoryGrid

    from fedrobust.messageapi import LocalGrid

    app, seen = PollingServerApp(), []

    @app.main()
    def main(grid, context):
        seen.append(grid)

    flowers, local = InMemoryGrid(state_factory=_StateFactory()), LocalGrid(lambda m, c: m, 2)
    for grid in (flowers, local):
        app(grid, Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={}))
    assert isinstance(seen[0], PollingGrid) and seen[0].wrapped is flowers
    assert seen[0].longest == flowers.pull_interval
    assert seen[1] is local  # its own send_and_receive, untouched


def test_a_stored_reply_is_pulled_at_once_not_at_the_end_of_the_pause(monkeypatch):
    import fedrobust.run.polling_grid as pg

    monkeypatch.setattr(pg, "SHORTEST_PAUSE", 1.0)  # pauses of a second at least: a ring must cut one short
    grid = PollingGrid(DelayedGrid([0.2]))
    ringer = threading.Timer(0.25, pg.replies_stored)  # the injector, once the reply is stored
    start = time.monotonic()
    ringer.start()
    try:
        replies = grid.send_and_receive(["a"])
    finally:
        ringer.cancel()
    assert [r.metadata.reply_to_message_id for r in replies] == ["0"]
    assert time.monotonic() - start < 0.6  # the pull after the first one was due at 1.0 s
    assert grid.wrapped.pulls == 2
