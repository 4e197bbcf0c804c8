"""VectorStrategy: seeded sampling by partition id, reply validation, stacking, round records."""

import weakref

import numpy as np
import pytest
import torch
from flwr.common import (
    Code,
    FitRes,
    Parameters,
    Status,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.server.client_manager import SimpleClientManager

from fedrobust.config import RunConfig
from fedrobust.strategies import STRATEGIES, MeanSGD, select_partitions

from _proxies import PartitionOnlyProxy

SHAPES = [(2, 2), (3,)]  # d = 7


def manager(cids, rng_seed=0):
    """Clients with arbitrary Flower ids, partition i for the i-th id."""
    cm = SimpleClientManager()
    for pid, cid in enumerate(cids):
        cm.register(PartitionOnlyProxy(pid, cid))
    return cm


def strategy(**kw):
    cfg = RunConfig(device="cpu", **{"strategy": "mean-sgd", "num_clients": 6, "clients_per_round": 3, "lr": 0.5, **kw})
    return MeanSGD(cfg, torch.zeros(7), SHAPES)


def reply(vec, n=8, dtype=np.float32, shapes=SHAPES):
    flat = np.asarray(vec, dtype=dtype)
    arrays, start = [], 0
    for s in shapes:
        k = int(np.prod(s))
        arrays.append(flat[start : start + k].reshape(s))
        start += k
    return (None, FitRes(Status(Code.OK, ""), ndarrays_to_parameters(arrays), n, {}))


def test_select_partitions_is_seeded_sorted_and_distinct():
    a = select_partitions(20, 5, seed=3, server_round=7)
    assert a == select_partitions(20, 5, seed=3, server_round=7) == sorted(set(a))
    assert a != select_partitions(20, 5, seed=4, server_round=7)
    assert a != select_partitions(20, 5, seed=3, server_round=8)


def test_sampling_follows_partition_ids_not_flower_node_ids():
    ids_a = [str(i) for i in (91, 12, 55, 7, 1000, 3)]
    ids_b = [str(i) for i in (5, 6, 7, 8, 9, 10)]
    s_a, s_b = strategy(), strategy()
    cm_a, cm_b = manager(ids_a), manager(ids_b)
    for rnd in (1, 2, 3):
        chosen_a = [c.partition_id for c, _ in s_a.configure_fit(rnd, Parameters([], ""), cm_a)]
        chosen_b = [c.partition_id for c, _ in s_b.configure_fit(rnd, Parameters([], ""), cm_b)]
        assert chosen_a == chosen_b == select_partitions(6, 3, 0, rnd)
    assert all(c.asked == 1 for c in cm_a.all().values())  # asked once, then cached


def test_configure_fit_sends_x_as_model_arrays_and_the_round_config():
    s = strategy()
    s.x += torch.arange(7.0)
    (client, ins), *_ = s.configure_fit(4, Parameters([], ""), manager([str(i) for i in range(6)]))
    arrays = parameters_to_ndarrays(ins.parameters)
    assert [a.shape for a in arrays] == SHAPES and arrays[1].tolist() == [4.0, 5.0, 6.0]
    assert ins.config == {
        "server-round": 4, "lr": 0.5, "local-steps": 10, "batch-size": 32, "seed": 0, "weight-decay": 0.0,
        "client-momentum": 0.0,
    }


def test_missing_partitions_are_a_clear_error():
    s = strategy(num_clients=6, clients_per_round=6, round_timeout=1.0)  # waits 1 s for the missing nodes
    with pytest.raises(RuntimeError, match="num-supernodes"):
        s.configure_fit(1, Parameters([], ""), manager(["a", "b"]))


def test_bad_replies_are_dropped_and_counted_not_raised():
    s = strategy()
    s.configure_fit(1, Parameters([], ""), manager([str(i) for i in range(6)]))
    good = reply(np.ones(7))
    bad = [
        reply([np.nan] + [0.0] * 6),  # non-finite
        reply(np.ones(7), dtype=np.float64),  # dtype
        reply(np.ones(7), shapes=[(7,)]),  # array count / shapes
        reply(np.ones(7), shapes=[(2, 2), (1, 3)]),  # shape
        (None, FitRes(Status(Code.OK, ""), Parameters([b"not an npy payload"], "numpy.ndarray"), 8, {})),
        (None, FitRes(Status(Code.FIT_NOT_IMPLEMENTED, "no"), Parameters([], ""), 0, {})),
    ]
    params, metrics = s.aggregate_fit(1, [good, *bad], [RuntimeError("lost")])
    assert metrics["accepted_clients"] == 1 and metrics["rejected_clients"] == 6 and metrics["failed_clients"] == 1
    np.testing.assert_allclose(np.concatenate([a.ravel() for a in parameters_to_ndarrays(params)]), -0.5 * np.ones(7))


def test_all_bad_replies_leave_x_unchanged():
    s = strategy()
    params, metrics = s.aggregate_fit(1, [reply([np.inf] * 7)], [])
    assert metrics["accepted_clients"] == 0 and torch.equal(s.x, torch.zeros(7))


def test_every_client_failing_leaves_x_unchanged_and_is_recorded():
    s = strategy()
    params, metrics = s.aggregate_fit(2, [], [ValueError("client crashed")])
    assert metrics["accepted_clients"] == 0 and metrics["failed_clients"] == 1
    assert torch.equal(s.x, torch.zeros(7))


def test_round_record_counts_bytes_time_and_evaluation():
    seen = []
    cfg = RunConfig(strategy="mean-sgd", num_clients=6, clients_per_round=3, device="cpu")
    s = MeanSGD(cfg, torch.zeros(7), SHAPES, evaluate_fn=lambda x: (float(x.sum()), 0.25), on_round=seen.append)
    assert s.evaluate(0, Parameters([], "")) == (0.0, {"accuracy": 0.25})
    s.configure_fit(1, Parameters([], ""), manager([str(i) for i in range(6)]))
    s.aggregate_fit(1, [reply(np.ones(7)), reply(np.full(7, np.nan))], [])
    s.evaluate(1, Parameters([], ""))
    (rec,) = seen
    assert (rec.round, rec.num_clients, rec.rejected_clients, rec.accuracy) == (1, 3, 1, 0.25)
    assert rec.bytes_down == 3 * 7 * 4 and rec.bytes_up == 2 * 7 * 4
    assert rec.loss == pytest.approx(-cfg.lr * 7) and rec.round_seconds >= rec.aggregation_seconds > 0
    res = s.results()
    assert res["initial"] == {"accuracy": 0.25, "loss": 0.0} and res["rounds"][0]["round"] == 1
    assert res["config"]["strategy"] == "mean-sgd"


def test_registry_and_wrong_x0_size():
    assert set(STRATEGIES) >= {"mean-sgd", "fedavg"}
    with pytest.raises(ValueError, match="x0 has 3 entries"):
        MeanSGD(RunConfig(device="cpu"), torch.zeros(3), SHAPES)


def test_a_round_stacks_into_the_last_rounds_buffer_unless_a_tensor_of_it_survived():
    s = strategy()
    s.configure_fit(1, Parameters([], ""), manager([str(i) for i in range(6)]))
    s.aggregate_fit(1, [reply(np.ones(7)), reply(2 * np.ones(7))], [])
    first = weakref.ref(s._spare)  # a weak reference: a strong one would itself keep the buffer from reuse
    assert first().shape == (2, 7)
    # Fewer rows: the same buffer, its first row; the step's result is this round's mean only.
    s.configure_fit(2, Parameters([], ""), manager([str(i) for i in range(6)]))
    params, _ = s.aggregate_fit(2, [reply(4 * np.ones(7))], [])
    assert s._spare is first()
    np.testing.assert_allclose(np.concatenate([a.ravel() for a in parameters_to_ndarrays(params)]), -2.75 * np.ones(7))
    # More rows than it has: a new buffer.
    s.configure_fit(3, Parameters([], ""), manager([str(i) for i in range(6)]))
    s.aggregate_fit(3, [reply(np.ones(7))] * 3, [])
    assert first() is None and s._spare.shape == (3, 7)


def test_a_stack_a_step_kept_is_never_written_again():
    class Keeping(MeanSGD):
        def step(self, updates, weights):
            self.kept = updates  # a view of the round's stack, kept past its round
            return super().step(updates, weights)

    cfg = RunConfig(device="cpu", strategy="mean-sgd", num_clients=6, clients_per_round=3, lr=0.5)
    s = Keeping(cfg, torch.zeros(7), SHAPES)
    for r, value in ((1, 1.0), (2, 5.0), (3, 9.0)):
        s.configure_fit(r, Parameters([], ""), manager([str(i) for i in range(6)]))
        before = s.kept.clone() if r > 1 else None
        kept = s.kept if r > 1 else None
        s.aggregate_fit(r, [reply(value * np.ones(7))] * 2, [])
        if kept is not None:
            assert torch.equal(kept, before)  # the earlier round's rows are as they were
    assert float(s.kept[0, 0]) == 9.0


def test_close_releases_the_stack_buffer():
    s = strategy()
    s.configure_fit(1, Parameters([], ""), manager([str(i) for i in range(6)]))
    s.aggregate_fit(1, [reply(np.ones(7))], [])
    assert s._spare is not None
    s.close()
    assert s._spare is None
