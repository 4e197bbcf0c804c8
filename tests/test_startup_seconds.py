"""Start-up before round 1 (Ray's actors starting) is recorded apart: round 1's round_seconds is the round only."""

import time

from fedrobust.config import RunConfig
from fedrobust.run.inprocess import LocalProxy, run_inprocess

CFG = RunConfig(strategy="mean-sgd", dataset="digits", num_clients=3, clients_per_round=3, rounds=2, device="cpu")
DELAY = 0.3  # per node: a slow start, as when Ray's actors start and import torch


def test_the_wait_for_the_first_nodes_is_startup_seconds_not_round_1(monkeypatch):
    answer = LocalProxy.get_properties

    def slow_first_answer(self, ins, timeout, group_id):
        time.sleep(DELAY)
        return answer(self, ins, timeout, group_id)

    monkeypatch.setattr(LocalProxy, "get_properties", slow_first_answer)
    results = run_inprocess(CFG)
    first, second = results["rounds"]
    assert results["startup_seconds"] >= DELAY  # the nodes are asked in parallel
    assert first["round_seconds"] < DELAY, first["round_seconds"]  # the nodes' start-up is not in round 1
    assert list(results).index("startup_seconds") < list(results).index("rounds")


def test_a_run_records_its_startup_seconds_through_the_message_api_too():
    results = run_inprocess(CFG.replace(api="message"))
    assert isinstance(results["startup_seconds"], float) and results["startup_seconds"] >= 0
