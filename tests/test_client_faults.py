"""Client faults: a client that raises or never answers is survived and recorded; missing nodes."""

import pytest
import torch

import _faults
import fedrobust
from _proxies import PartitionOnlyProxy
from fedrobust.config import RunConfig
from fedrobust.run.inprocess import run_inprocess
from fedrobust.strategies import MeanSGD
from fedrobust.run.build import byzantine_clients
from flwr.server.client_manager import SimpleClientManager



@pytest.fixture(autouse=True, scope="module")
def _fault_attacks():
    """The test-only ``test-raise`` and ``test-hang`` attacks, registered for this module's tests only."""
    with _faults.registered():
        yield


KEYS = dict(
    strategy="mean-sgd", dataset="breast-cancer", model="logistic", num_clients=5, clients_per_round=5, rounds=3,
    lr=0.1, batch_size=16, device="cpu", byzantine_fraction=0.2,
)


def test_a_raising_client_is_a_recorded_failure_in_process():
    cfg = RunConfig(**KEYS, attack="test-raise")
    (faulty,) = byzantine_clients(cfg, 1)
    models = []
    results = run_inprocess(cfg, after_round=lambda s, r: models.append(s.x.clone()))
    for r in results["rounds"]:
        assert r["failed_clients"] == 1 and r["failed_partitions"] == [faulty] and r["rejected_clients"] == 0
    assert not torch.equal(models[0], models[-1])  # the others went on training


def manager_with(partitions):
    manager = SimpleClientManager()
    for p in partitions:
        manager.register(PartitionOnlyProxy(p))
    return manager


def test_a_node_lost_during_the_run_is_a_failed_client_of_its_rounds():
    cfg = RunConfig(num_clients=4, clients_per_round=4, device="cpu", round_timeout=1.0)
    s = MeanSGD(cfg, torch.zeros(3), [(3,)])
    manager = manager_with(range(4))
    assert len(s.configure_fit(1, None, manager)) == 4
    s.aggregate_fit(1, [], [])
    manager.unregister(next(c for c in manager.all().values() if c.partition_id == 2))
    pairs = s.configure_fit(2, None, manager)
    assert sorted(proxy.partition_id for proxy, _ in pairs) == [0, 1, 3]
    _, metrics = s.aggregate_fit(2, [], [])
    assert metrics["failed_clients"] == 1


def test_too_few_nodes_at_the_start_is_a_clear_error_after_waiting():
    cfg = RunConfig(num_clients=4, clients_per_round=2, device="cpu", round_timeout=1.0)
    s = MeanSGD(cfg, torch.zeros(3), [(3,)])
    with pytest.raises(RuntimeError, match="run as many SuperNodes as num-clients"):
        for rnd in range(1, 6):  # some round samples partition 3, which no node holds
            s.configure_fit(rnd, None, manager_with(range(3)))
            s._configured = False


@pytest.mark.slow
def test_engine_survives_a_raising_and_a_hanging_client():
    raised = fedrobust.simulate(KEYS, attack="test-raise")
    (faulty,) = byzantine_clients(RunConfig(**KEYS, attack="test-raise"), 1)
    assert all(r["failed_clients"] == 1 and r["failed_partitions"] == [faulty] for r in raised["rounds"])
    # The hanging client sleeps past round-timeout: its round goes on without it.
    hung = fedrobust.simulate(KEYS, attack="test-hang", attack_params="seconds=6", round_timeout=3.0, rounds=2)
    assert len(hung["rounds"]) == 2
    assert all(faulty in r["failed_partitions"] for r in hung["rounds"])
    assert all(r["accuracy"] is not None for r in hung["rounds"])
