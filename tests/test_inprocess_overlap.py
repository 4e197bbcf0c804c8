"""The in-process engine evaluates a round's model in a thread of its own while the next round's
clients fit, through both APIs: the same records, rounds and model as one after the other, and a
finished round keeps its record when the run stops or fails during the next one."""

import sys
import threading
import time

import pytest
import torch

from _records import untimed
from fedrobust.clients.gradient import GradientClient
from fedrobust.config import RunConfig
from fedrobust.run import inprocess
from fedrobust.run.inprocess import EVALUATION_THREAD, run_inprocess
from fedrobust.run.interrupt import Interrupted
from fedrobust.strategies.base import VectorStrategy

ROUNDS = 5


@pytest.fixture
def threads():
    """Set the caller's torch thread count (the engine overlaps when 2 x client-threads fit in it)."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.fixture(params=["legacy", "message"])
def api(request):
    """Both in-process loops: the legacy API's and the Message API's (``run_local``)."""
    return request.param


def _cfg(**keys) -> RunConfig:
    base = dict(strategy="mean-sgd", dataset="digits", model="logistic", num_clients=4, clients_per_round=4,
                rounds=ROUNDS, device="cpu", lr=0.5)
    return RunConfig(**{**base, **keys})


def _records(doc: dict) -> list[dict]:
    return untimed(doc["rounds"])


def _observed_run(monkeypatch, cfg: RunConfig) -> tuple[dict, list[str], list[tuple]]:
    """The run's results, the threads :meth:`VectorStrategy.measure` ran in, and what ``after_round`` saw."""
    where: list[str] = []
    measure = VectorStrategy.measure

    def observed(self):
        where.append(threading.current_thread().name)
        return measure(self)

    monkeypatch.setattr(VectorStrategy, "measure", observed)
    seen: list[tuple] = []
    doc = run_inprocess(cfg, warn=False, after_round=lambda s, rnd: seen.append(
        (rnd, s.records[-1].round, s.records[-1].accuracy, s.x.clone())))
    monkeypatch.setattr(VectorStrategy, "measure", measure)
    return doc, where, seen


def test_the_overlapped_run_gives_the_records_of_the_sequential_one(monkeypatch, threads, api):
    threads(2)
    doc, where, seen = _observed_run(monkeypatch, _cfg(api=api))
    threads(1)  # 2 x client-threads > 1: no evaluation thread
    alone, alone_where, alone_seen = _observed_run(monkeypatch, _cfg(api=api))
    main = threading.main_thread().name
    # x0 and the last round in the main thread, rounds 1 .. R-1 beside the next round's clients
    assert where[0] == where[-1] == main and all(w.startswith(EVALUATION_THREAD) for w in where[1:-1])
    assert len(where) == ROUNDS + 1 and set(alone_where) == {main}
    assert _records(doc) == _records(alone) and doc["initial"] == alone["initial"]
    assert [r["round"] for r in doc["rounds"]] == list(range(1, ROUNDS + 1))
    # after_round gets each round once, in order, after its record, with that round's model
    assert [s[:3] for s in seen] == [s[:3] for s in alone_seen] and [s[0] for s in seen] == list(range(1, ROUNDS + 1))
    assert all(torch.equal(a[3], b[3]) for a, b in zip(seen, alone_seen))


def test_the_rounds_seconds_add_up_to_no_more_than_the_run(threads):
    threads(2)
    t0 = time.perf_counter()
    doc = run_inprocess(_cfg(model="mlp", dataset="mnist5k", batch_size=32), warn=False)
    wall = time.perf_counter() - t0
    seconds = [r["round_seconds"] for r in doc["rounds"]]
    assert all(s > 0 for s in seconds) and sum(seconds) <= wall


@pytest.mark.parametrize("keys, caller", [({"client_threads": 0}, 2), ({}, 1), ({"client_threads": 2}, 2)])
def test_no_evaluation_thread_where_it_would_compete_for_the_cores(monkeypatch, threads, keys, caller, api):
    threads(caller)
    _, where, _ = _observed_run(monkeypatch, _cfg(rounds=3, api=api, **keys))
    assert set(where) == {threading.main_thread().name}


@pytest.mark.parametrize("caller", [2, 1])
def test_a_stop_during_the_next_rounds_fits_keeps_the_finished_round(monkeypatch, threads, tmp_path, caller, api):
    threads(caller)
    fit = GradientClient.fit

    def interrupted(self, parameters, config):
        if int(config["server-round"]) == 3 and self.partition_id == 2:  # while round 2's model is evaluated
            raise KeyboardInterrupt
        return fit(self, parameters, config)

    monkeypatch.setattr(GradientClient, "fit", interrupted)
    out = tmp_path / "r.json"
    with pytest.raises(Interrupted) as caught:
        run_inprocess(_cfg(api=api, output=str(out), checkpoint_dir=str(tmp_path / "ckpt")), warn=False)
    doc = caught.value.results
    assert doc["interrupted"] is True and [r["round"] for r in doc["rounds"]] == [1, 2]
    assert all(r["accuracy"] is not None for r in doc["rounds"])
    monkeypatch.setattr(GradientClient, "fit", fit)
    resumed = run_inprocess(_cfg(api=api, checkpoint_dir=str(tmp_path / "ckpt"), resume=True), warn=False)
    threads(1)
    whole = run_inprocess(_cfg(api=api), warn=False)
    assert _records(resumed) == _records(whole)  # the checkpoint of round 2 was written: an exact resume


def test_a_failing_evaluation_beside_the_fits_fails_the_run(monkeypatch, threads, api):
    threads(2)
    measure = VectorStrategy.measure

    def failing(self):
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("evaluation broke")
        return measure(self)

    monkeypatch.setattr(VectorStrategy, "measure", failing)
    with pytest.raises(RuntimeError, match="evaluation broke"):
        run_inprocess(_cfg(api=api), warn=False)


def test_a_strategy_with_an_evaluate_of_its_own_gets_it_called_every_round(monkeypatch, threads, api):
    threads(2)
    from fedrobust.strategies import STRATEGIES

    calls = []
    base = STRATEGIES["mean-sgd"]

    class Own(base):
        def evaluate(self, server_round, parameters):
            calls.append(server_round)
            return super().evaluate(server_round, parameters)

    monkeypatch.setitem(STRATEGIES._classes, "mean-sgd", Own)  # the table of built-in classes, for this test
    _, where, _ = _observed_run(monkeypatch, _cfg(api=api))
    assert calls == list(range(ROUNDS + 1)) and set(where) == {threading.main_thread().name}


def test_a_stop_while_waiting_for_the_evaluation_keeps_the_finished_round(monkeypatch, threads, api):
    """Ctrl-C in the main thread's wait for round 2's evaluation (after round 3's fits): round 2 is
    closed on the way out, as it was closed before round 3 began one step after the other."""
    from concurrent.futures import Future

    threads(2)
    result = Future.result
    waits = []

    def interrupted(self, timeout=None):
        if sys._getframe(1).f_code.co_filename == inprocess.__file__:  # the engine's waits, not the partition queries'
            waits.append(1)
            if len(waits) == 2:  # round 2's evaluation, waited for after round 3's fits
                raise KeyboardInterrupt
        return result(self, timeout)

    monkeypatch.setattr(Future, "result", interrupted)
    with pytest.raises(Interrupted) as caught:
        run_inprocess(_cfg(api=api), warn=False)
    assert [r["round"] for r in caught.value.results["rounds"]] == [1, 2]
