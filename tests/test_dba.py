"""dba: each attacker stamps one band of the backdoor's trigger; the success rate is measured with the whole trigger."""

import numpy as np
import pytest
import torch
from flwr.common import Context, FitIns, RecordDict, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.common.constant import PARTITION_ID_KEY

from fedrobust.attacks import DBA, Backdoor, attack_success_rate, get_attack
from fedrobust.config import RunConfig
from fedrobust.run.app import make_client
from fedrobust.core.ndarrays import flatten, to_ndarrays
from fedrobust.models import flat_params
from fedrobust.run.build import build_model, byzantine_clients

FACTS = dict(num_clients=10, clients_per_round=10, num_byzantine=4)


def _images(n=12):
    x = np.random.default_rng(0).uniform(0, 0.5, (n, 1, 8, 8)).astype(np.float32)
    return x, np.arange(n) % 3


def test_the_parts_are_bands_of_the_whole_trigger_and_together_they_are_the_trigger():
    x, y = _images()
    whole = Backdoor(target=2, fraction=1.0, trigger=True, trigger_size=4).poison(x, y, 3, np.random.default_rng(0))[0]
    stamped = [DBA(target=2, fraction=1.0, parts=4, part=p).poison(x, y, 3, np.random.default_rng(0)) for p in range(4)]
    assert all(np.array_equal(yp, np.full(12, 2)) for _, yp in stamped)
    for p, (xp, _) in enumerate(stamped):
        changed = np.argwhere((xp != x).any(axis=(0, 1)))
        assert {tuple(rc) for rc in changed} == {(4 + p, c) for c in range(4, 8)}  # row 4 + p of the 4x4 square
    union = x.copy()
    for xp, _ in stamped:
        union = np.where(xp != x, xp, union)
    assert np.array_equal(union, whole)


def test_tabular_parts_are_chunks_of_the_last_features():
    x = np.zeros((2, 6), np.float32)
    xp, _ = DBA(trigger_size=3, parts=2, part=0, fraction=1.0, trigger_value=1.0).poison(x, np.array([0, 1]), 2)
    assert xp.tolist() == [[0, 0, 0, 1, 1, 0]] * 2


def test_the_part_comes_from_the_rank_among_the_byzantine_ids():
    assert [DBA().for_client(partition_id=9, byzantine_rank=r, **FACTS).part for r in range(6)] == [0, 1, 2, 3, 0, 1]
    assert DBA(parts=2).for_client(partition_id=7, byzantine_rank=None, **FACTS).part == 1  # dynamic: the id
    given = DBA(part=3)
    assert given.for_client(partition_id=0, byzantine_rank=0, **FACTS) is given
    with pytest.raises(ValueError, match="part is None"):
        DBA().poison(*_images(), 3)
    with pytest.raises(ValueError, match="parts must lie in"):
        DBA(trigger_size=2, parts=3)
    with pytest.raises(ValueError, match="part must lie in"):
        DBA(parts=2, part=2)
    assert DBA().kind == "data" and not DBA().corrupts_messages and "trigger" not in DBA().params


def test_the_success_rate_stamps_the_whole_trigger():
    x, y = _images()
    dba = DBA(target=0, part=0)
    only_whole = lambda xb: np.where((xb[:, 0, 4:, 4:] == xb.max()).all(axis=(1, 2)), 0, 1)  # noqa: E731
    assert attack_success_rate(only_whole, x, y, dba) == 1.0


def _reply(cfg, partition_id):
    client = make_client(cfg, Context(0, partition_id, {PARTITION_ID_KEY: partition_id}, RecordDict(), {}))
    model = build_model(cfg)
    arrays = to_ndarrays(flat_params(model), [tuple(p.shape) for p in model.parameters()])
    config = {"server-round": 1, "lr": cfg.lr, "local-steps": cfg.local_steps, "batch-size": cfg.batch_size,
              "seed": cfg.seed}
    return flatten(parameters_to_ndarrays(client.fit(FitIns(ndarrays_to_parameters(arrays), config)).parameters))


def test_the_app_gives_each_fixed_attacker_the_part_of_its_rank():
    params = "target=1,fraction=1.0,trigger_size=4"
    cfg = RunConfig(strategy="fedavg", dataset="digits", model="logistic", num_clients=10, clients_per_round=10,
                    device="cpu", attack="dba", attack_params=params, byzantine_fraction=0.4)
    for rank, pid in enumerate(sorted(byzantine_clients(cfg, 0))):
        got = _reply(cfg, pid)
        for part in range(4):
            same = torch.equal(got, _reply(cfg.replace(attack_params=f"{params},part={part}"), pid))
            assert same == (part == rank), (pid, rank, part)
