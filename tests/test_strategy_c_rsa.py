"""c-rsa and rsa: the master on the server, stateful workers, ternary messages, honest bytes.

C-RSA and RSA are from He, Zhu and Ling (2023), "C-RSA: Byzantine-robust and communication-efficient
distributed learning in the non-convex and non-IID regime".
"""

import math

import numpy as np
import pytest
import torch
from flwr.common import RecordDict

import fedrobust
from _strategies_ii import load_script, reply
from fedrobust.attacks import get_attack
from fedrobust.clients import CLIENTS, ByzantineClient, RSAClient
from fedrobust.clients.rsa import MODEL_KEY
from fedrobust.compression import RandK, payload_to_ndarrays
from fedrobust.config import RunConfig
from fedrobust.models import get_model
from fedrobust.core.ndarrays import payload_bytes
from fedrobust.optim import pack_signs, unpack_signs
from fedrobust.strategies import CRSA, RSA, STRATEGIES
from fedrobust.strategies.c_rsa import coordinate_seed

D = 8


def _strategy(name="c-rsa", **kw):
    cfg = RunConfig(**{"strategy": name, "lr": 0.1, "lam": 0.5, "coord_ratio": 0.5, "device": "cpu", **kw})
    return STRATEGIES[name](cfg, torch.arange(D, dtype=torch.float32) - 3, [(D,)])


def _signs(values):
    return payload_to_ndarrays(pack_signs(torch.tensor(values, dtype=torch.int8)))


def test_registry():
    assert STRATEGIES["c-rsa"] is CRSA and STRATEGIES["rsa"] is RSA and CLIENTS["rsa"] is RSAClient
    assert CRSA.protocol == RSA.protocol == "rsa"


def test_first_time_workers_get_the_whole_model_then_only_x0_on_omega():
    s = _strategy()
    first = s.fit_messages(1, [0, 1])
    arrays, config = first[0]
    seed = coordinate_seed(0, 1)
    omega = RandK(k=4).indices(D, seed)
    assert config["with-model"] and config["coord-count"] == 4 and config["coord-method"] == "rand"
    assert "weight-decay" not in config  # mu is the master's regulariser
    np.testing.assert_array_equal(arrays[0], s.x.numpy())  # the whole x0 ...
    assert int(arrays[1][0]) == seed  # ... then the rand-k payload: the seed and x0 on omega
    np.testing.assert_array_equal(arrays[2], s.x[omega].numpy())
    assert payload_bytes(arrays) == 4 * D + 8 + 4 * 4
    s.aggregate_fit(1, [reply(_signs([1, 1, 1, 1]), proxy=None), reply(_signs([1, 1, 1, 1]))], [])
    assert s.initialised == {0, 1}  # (replies without a proxy: partition = position)
    later, _ = s.fit_messages(2, [0, 1])[0]
    assert len(later) == 2 and payload_bytes(later) == 8 + 4 * 4


def test_master_step_by_hand_and_bytes():
    s = _strategy(weight_decay=0.01)
    x0 = s.x.clone()
    omega = RandK(k=4).indices(D, coordinate_seed(0, 1))
    msgs = [[1, -1, 0, 1], [1, 1, 0, 1], [1, 1, 1, -1]]
    _, metrics = s.aggregate_fit(1, [reply(_signs(m)) for m in msgs], [])
    expected = x0 - 0.1 * 0.01 * x0
    expected[omega] -= 0.1 * 0.5 * torch.tensor(msgs, dtype=torch.float32).sum(dim=0)
    torch.testing.assert_close(s.x, expected)
    assert metrics["bytes_up"] == 2 + 2 + 1  # a zero-plane only where a message has a zero


def test_malformed_sign_messages_are_rejected():
    s = _strategy()
    good = _signs([1, -1, 1, 1])
    bad = [
        [good[0]],  # a plane missing
        [np.zeros(2, np.uint8), good[1]],  # too many bytes for l = 4
        [good[0].astype(np.int32), good[1]],  # wrong dtype
        [np.ones(D, np.float32)],  # an uncompressed vector
    ]
    _, metrics = s.aggregate_fit(1, [reply(good)] + [reply(b) for b in bad], [])
    assert metrics["accepted_clients"] == 1 and metrics["rejected_clients"] == 4


def test_rsa_sends_the_model_every_round_and_reads_d_signs():
    s = _strategy("rsa")
    assert s.l == D and s.coordinates(1) is None
    for rnd in (1, 2):
        (arrays, config), = s.fit_messages(rnd, [3])
        assert config["coord-method"] == "all" and payload_bytes(arrays) == 4 * D
    x0 = s.x.clone()
    s.aggregate_fit(1, [reply(_signs([1] * D))], [])
    torch.testing.assert_close(s.x, x0 - 0.1 * 0.5)


def test_top_method_sends_the_largest_coordinates():
    s = _strategy(coord_method="top")
    s.x.copy_(torch.tensor([-3.5, 0.1, -0.2, 5.0, 0.3, 2.0, -0.4, 0.0]))
    (arrays, config), = s.fit_messages(1, [0])
    assert config["coord-method"] == "top"
    assert arrays[1].tolist() == [0, 3, 5, 6]  # the four largest |x0|, ascending, then their values
    np.testing.assert_array_equal(arrays[2], np.array([-3.5, 5.0, 2.0, -0.4], np.float32))
    assert torch.equal(s.coordinates(1), torch.tensor([0, 3, 5, 6]))


# -------------------------------------------------------------------------------------- the worker

DATA = (torch.eye(3)[[0, 1, 1, 2]], torch.tensor([0, 1, 1, 0]))


def _client(state, partition_id=0):
    return RSAClient(get_model("logistic", input_shape=(3,), num_classes=2, bias=False), *DATA,
                     partition_id=partition_id, state=state)


def _rand_config(rnd, with_model):
    return {"seed": 0, "server-round": rnd, "batch-size": 4, "lr": 1.0, "lam": 0.5, "coord-method": "rand",
            "coord-count": 2, "with-model": with_model}


def test_worker_keeps_its_model_in_the_context_state():
    state = RecordDict()
    x0 = torch.tensor([1.0, -1.0, 0.5])
    seed = 11
    omega = RandK(k=2).indices(3, seed)
    compact = payload_to_ndarrays(RandK(k=2).encode(x0, seed=seed))
    full = [x0.numpy().reshape(1, 3)] + compact
    arrays, _, _ = _client(state).fit(full, _rand_config(1, True))
    assert unpack_signs(dict(zip(("negative", "zero"), arrays)), 2).tolist() == [0, 0]  # x_k started at x0
    xk = state[MODEL_KEY]["x"].numpy()
    assert not np.allclose(xk, x0.numpy())  # the worker stepped
    # a fresh client object on the same state continues from x_k and compares it with C(x0)
    arrays, _, _ = _client(state).fit(compact, _rand_config(2, False))
    expected = torch.sign(x0[omega] - torch.from_numpy(xk)[omega]).to(torch.int8)
    assert unpack_signs(dict(zip(("negative", "zero"), arrays)), 2).tolist() == expected.tolist()


@pytest.mark.parametrize(
    "attack, check",
    [
        ("large-number", lambda honest, sent: sent == [1, 1, 1]),
        ("sign-flip", lambda honest, sent: sent == [-v for v in honest]),
        ("gaussian-replace", lambda honest, sent: set(sent) <= {-1, 1}),
    ],
)
def test_byzantine_workers_send_signs_in_the_same_format(attack, check):
    x0 = [np.array([[1.0, -1.0, 0.5]], np.float32)]
    config = {**_rand_config(1, True), "coord-method": "all", "coord-count": 3}
    # the message at round 1 is all zeros (x_k = x0): step twin workers once so that it has signs
    states = [RecordDict(), RecordDict()]
    for state in states:
        _client(state).fit(x0, config)
    honest, _, _ = _client(states[0]).fit(x0, {**config, "server-round": 2})
    byz = ByzantineClient(_client(states[1]), get_attack(attack), num_clients=2, fraction=0.5, mode="dynamic")
    assert byz.is_byzantine(0, 2)
    sent, _, metrics = byz.fit(x0, {**config, "server-round": 2})
    decode = lambda a: unpack_signs(dict(zip(("negative", "zero"), a)), 3).tolist()
    assert [a.dtype for a in sent] == [np.uint8, np.uint8] and metrics["bytes_sent"] <= 2
    assert any(decode(honest)) and check(decode(honest), decode(sent))


# --------------------------------------------------------------------------- end to end, in process

script = load_script()


def test_c_rsa_uploads_about_half_of_rsa_in_process():
    out = {}
    for name in ("c-rsa", "rsa"):
        cfg = script.crsa_config(name, "none", rounds=2, num_clients=3, clients_per_round=3)
        out[name] = script.run_inprocess(cfg)["rounds"]
    d = 795_010  # mlp on mnist5k
    # round 2: x_k != x0 on nearly every coordinate, so one bit-plane mostly
    ratio = out["c-rsa"][1]["bytes_up"] / out["rsa"][1]["bytes_up"]
    assert ratio == pytest.approx(0.5, abs=0.03)
    assert out["rsa"][1]["bytes_down"] == 3 * 4 * d
    assert out["c-rsa"][0]["bytes_down"] == 3 * (4 * d + 8 + 4 * (d // 2))  # round 1: model + payload
    assert out["c-rsa"][1]["bytes_down"] == 3 * (8 + 4 * (d // 2))
    assert all(r["rejected_clients"] == 0 for rs in out.values() for r in rs)


# ---------------------------------------------------------------- C-RSA's acceptance, simulation engine


def _accuracy(results):
    return float(np.mean([r["accuracy"] for r in results["rounds"][-3:]]))


@pytest.mark.slow
def test_c_rsa_keeps_its_accuracy_under_attack_where_the_mean_does_not():
    """mnist5k, half-class non-IID, 10 clients, 2 Byzantine with large-number, through Ray (15 rounds)."""
    runs = {
        (name, attack): fedrobust.simulate(script.crsa_config(name, attack, rounds=15))
        for name, attack in [("c-rsa", "none"), ("c-rsa", "large-number"), ("mean-sgd", "large-number")]
    }
    clean = _accuracy(runs["c-rsa", "none"])
    assert clean > 0.6
    assert _accuracy(runs["c-rsa", "large-number"]) > clean - 0.05
    assert _accuracy(runs["mean-sgd", "large-number"]) < clean - 0.3
    rounds = runs["c-rsa", "large-number"]["rounds"]
    assert all(r["rejected_clients"] == 0 and len(r["byzantine_clients"]) == 2 for r in rounds)
    assert all(r["bytes_up"] <= 10 * 2 * math.ceil(397_505 / 8) for r in rounds)
