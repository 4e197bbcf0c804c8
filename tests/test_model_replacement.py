"""model-replacement: the backdoor's poisoned training, then the update scaled by γ = n / (η · f).

Unit tests on the attack and on a ByzantineClient around a LocalStepsClient; the "through the app" tests
build the clients the ClientApp builds (``fedrobust.run.app.make_client``) on the offline ``digits`` data,
so the boost comes from the run config. The end-to-end comparison with ``backdoor`` is in
tests/test_attack_runs.py.
"""

import numpy as np
import pytest
import torch
from flwr.common import Code, Context, FitIns, RecordDict, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.common.constant import PARTITION_ID_KEY

from fedrobust.attacks import Backdoor, ModelReplacement, byzantine_ids, get_attack, replacement_boost
from fedrobust.clients import ByzantineClient, LocalStepsClient
from fedrobust.clients.byzantine import ATTACK_STATE_KEY
from fedrobust.config import RunConfig
from fedrobust.core.ndarrays import flatten, to_ndarrays
from fedrobust.models import flat_params, get_model
from fedrobust.run.app import make_client
from fedrobust.run.build import build_model, byzantine_clients

FACTS = dict(partition_id=0, num_clients=10, clients_per_round=10, num_byzantine=2)


# ------------------------------------------------------------------------------------------ the attack
def test_it_is_a_backdoor_data_attack_that_also_corrupts_its_messages():
    mr = get_attack("model-replacement")
    assert isinstance(mr, Backdoor) and mr.kind == "data" and mr.corrupts_messages
    assert mr.params == {"target": 0, "fraction": 0.5, "trigger": True, "trigger_size": 3, "trigger_value": None,
                         "boost": None}
    assert not get_attack("backdoor").corrupts_messages and get_attack("bit-flip").corrupts_messages
    with pytest.raises(ValueError, match="boost must be a finite number > 0"):
        get_attack("model-replacement", boost=0)
    with pytest.raises(ValueError, match="boost is None"):
        mr.corrupt(torch.ones(3))


@pytest.mark.parametrize(
    "facts, boost",
    [
        (FACTS, 5.0),  # n = 10 clients, f = 2 attackers in every round: each sends 10 / 2 · Δ
        ({**FACTS, "num_byzantine": 1}, 10.0),  # a single attacker: the paper's γ = n / η
        ({**FACTS, "clients_per_round": 5}, 5.0),  # f = 2 · 5 / 10 = 1 expected attacker among 5
        ({**FACTS, "num_byzantine": 1, "clients_per_round": 4}, 4.0),  # f = 0.4 < 1: counted as 1
        ({**FACTS, "server_step": 0.5}, 10.0),  # a server that halves the mean: twice the boost
    ],
)
def test_the_default_boost_is_n_over_eta_times_the_expected_attackers(facts, boost):
    mr = ModelReplacement(target=3).for_client(**facts)
    assert mr.boost == boost and mr.target == 3 and mr.fraction == 0.5
    assert torch.equal(mr.corrupt(torch.tensor([1.0, -2.0])), torch.tensor([boost, -2 * boost]))
    assert replacement_boost(facts["clients_per_round"], 0) == facts["clients_per_round"]


def test_a_given_boost_and_other_attacks_are_left_as_they_are():
    mr = ModelReplacement(boost=3.0)
    assert mr.for_client(**FACTS) is mr
    for name in ("backdoor", "bit-flip", "label-flip", "none"):
        attack = get_attack(name)
        assert attack.for_client(**FACTS) is attack


def test_poisoning_is_the_backdoors_and_the_attack_keeps_no_state():
    x = np.random.default_rng(0).uniform(0, 1, (20, 1, 6, 6)).astype(np.float32)
    y = np.arange(20) % 4
    mr = ModelReplacement(target=2, boost=7.0)
    bd = Backdoor(target=2, fraction=0.5, trigger=True)
    for a, b in zip(mr.poison(x, y, 4, np.random.default_rng(1)), bd.poison(x, y, 4, np.random.default_rng(1))):
        assert np.array_equal(a, b)
    assert mr.state() == {}


# ------------------------------------------------------------------------------------ Byzantine client
def _honest(x, y):
    model = get_model("mlp", input_shape=(5,), num_classes=3, seed=1, hidden=7)
    return LocalStepsClient(model, x, y, partition_id=0)


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(40, 5, generator=g), torch.randint(3, (40,), generator=g)


def _config(server_round=1):
    return {"server-round": server_round, "lr": 0.1, "local-steps": 3, "batch-size": 8, "seed": 0}


def test_a_byzantine_round_sends_boost_times_the_update_trained_on_the_poisoned_data():
    x, y = _data()
    attack = ModelReplacement(target=1, fraction=0.5, trigger_size=2, boost=4.0)
    xp, yp = (torch.from_numpy(a) for a in attack.poison(x.numpy(), y.numpy(), 3, np.random.default_rng(0)))
    honest = _honest(x, y)
    params = to_ndarrays(flat_params(honest.model) + 0.01, honest.shapes)
    byz = ByzantineClient(honest, attack, num_clients=1, fraction=0.0, poisoned=(xp, yp))
    byz.is_byzantine = lambda seed, server_round: True  # one client, always attacking
    sent, n, _ = byz.fit(params, _config())
    trained, _, _ = _honest(xp, yp).fit(params, _config())  # the honest protocol on the poisoned data
    assert n == 40 and torch.equal(flatten(sent), 4.0 * flatten(trained))
    again, _, _ = byz.fit(params, _config())
    assert torch.equal(flatten(again), flatten(sent))  # deterministic
    assert torch.equal(honest.x, x) and torch.equal(honest.y, y)  # the clean data is put back
    assert ATTACK_STATE_KEY not in honest.state  # nothing to remember between rounds


# ------------------------------------------------------------------------------------- through the app
def _cfg(**kw):
    base = {"strategy": "fedavg", "dataset": "digits", "model": "logistic", "num_clients": 5,
            "clients_per_round": 5, "batch_size": 16, "device": "cpu", "client_threads": 0,
            "attack_params": "target=2,trigger_size=2"}
    return RunConfig(**{**base, **kw})


def _reply(cfg, partition_id, server_round=1):
    client = make_client(cfg, Context(0, partition_id, {PARTITION_ID_KEY: partition_id}, RecordDict(), {}))
    model = build_model(cfg)
    arrays = to_ndarrays(flat_params(model), [tuple(p.shape) for p in model.parameters()])
    config = {"server-round": server_round, "lr": cfg.lr, "local-steps": cfg.local_steps,
              "batch-size": cfg.batch_size, "seed": cfg.seed}
    res = client.fit(FitIns(ndarrays_to_parameters(arrays), config))
    assert res.status.code == Code.OK
    return flatten(parameters_to_ndarrays(res.parameters))


@pytest.mark.parametrize("clients_per_round, params, boost", [(5, "", 2.5), (4, "", 2.5), (5, ",boost=3", 3.0)])
def test_the_app_scales_the_backdoor_update_by_the_boost_of_the_run(clients_per_round, params, boost):
    # 5 clients, ψ = 0.4: 2 attackers; all 5 sampled: γ = 5 / 2; 4 sampled: f = 1.6, γ = 4 / 1.6
    cfg = _cfg(attack="model-replacement", byzantine_fraction=0.4, clients_per_round=clients_per_round)
    cfg = cfg.replace(attack_params=cfg.attack_params + params)
    backdoor = cfg.replace(attack="backdoor", attack_params="target=2,trigger_size=2,fraction=0.5,trigger=true")
    for pid in sorted(byzantine_clients(cfg, 1)):
        torch.testing.assert_close(_reply(cfg, pid, 1), boost * _reply(backdoor, pid, 1), rtol=1e-6, atol=0)


def test_honest_rounds_of_a_dynamic_attacker_are_bit_identical_to_the_honest_client():
    cfg = _cfg(attack="model-replacement", byzantine_fraction=0.4, byzantine_mode="dynamic")
    honest_cfg = cfg.replace(attack="none", attack_params="")
    for r in (1, 2, 3):
        ids = byzantine_ids(5, 0.4, "dynamic", cfg.seed, r)
        for pid in range(5):
            got, ref = _reply(cfg, pid, r), _reply(honest_cfg, pid, r)
            assert torch.equal(got, ref) == (pid not in ids)
