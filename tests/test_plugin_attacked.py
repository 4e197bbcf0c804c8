"""The attack wrapper (fedrobust.plugin.Attacked) around Flower strategies of both APIs, driven
with hand-built replies: the Byzantine replies become exactly the attack's crafted vectors, in the
honest replies' format, before the wrapped strategy aggregates. The slow tests at the end run
examples/attack-flower-strategies through `flwr run` (Flower's FedAvg and Krum under attack)."""

import json
import logging
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Error, Message, MetricRecord, RecordDict
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server import strategy as legacy_flwr
from flwr.serverapp import strategy as message_flwr

from _flower_log import FlowerLog
from _flwr_cli import ROOT, flwr, flwr_env, flwr_json, pids_with_env, stop, wait_for_run  # noqa: F401 - flwr_env: fixture
from fedrobust.attacks import ATTACKS as REGISTERED
from fedrobust.attacks import AdversaryView, OmniscientAttack, byzantine_ids, get_attack
from fedrobust.plugin import Attacked, legacy, message
from fedrobust.plugin.attacked_legacy import LegacyAttacked
from fedrobust.plugin.attacked_message import MessageAttacked

NODES = 10
EPS = 0.5


def global_model(shift=0.0):
    return [np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4) + np.float32(shift), np.full(4, 0.5 + shift, np.float32)]


def flat(arrays):
    return np.concatenate([np.asarray(a).reshape(-1) for a in arrays])


def client_arrays(x, i, seed=0):
    rng = np.random.default_rng([seed, i])
    return [a + np.float32(0.1) + rng.normal(0, 0.05, a.shape).astype(np.float32) for a in x]


def expected_crafted(x, honest, attack, f, **view):
    """The attack's rows on the honest updates, computed here, as the weights a Byzantine reply carries."""
    rows = torch.from_numpy(np.stack([flat(w) - flat(x) for w in honest]))
    crafted = attack.craft(rows, AdversaryView(n=len(honest) + f, f=f, **view)).numpy()
    return flat(x) + crafted, rows


# ------------------------------------------------------------------------------------------ legacy
class _Proxy:
    def __init__(self, cid):
        self.cid = cid


class _Manager:
    """Just what the strategies ask of a client manager: every client, every round."""

    def __init__(self, n=NODES):
        self.proxies = {str(i): _Proxy(str(i)) for i in range(n)}

    def num_available(self):
        return len(self.proxies)

    def all(self):
        return dict(self.proxies)

    def sample(self, num_clients, min_num_clients=None, criterion=None):
        return list(self.proxies.values())[:num_clients]


def spy(cls):
    """A subclass of a Flower strategy that keeps the replies its aggregation got."""

    class Spy(cls):
        seen = None

        def aggregate_fit(self, server_round, results, failures):
            self.seen = list(results)
            return super().aggregate_fit(server_round, results, failures)

        def aggregate_train(self, server_round, replies):
            self.seen = list(replies)
            return super().aggregate_train(server_round, replies)

    Spy.__name__ = cls.__name__
    return Spy


def fit_res(arrays, partition=None, num_examples=10):
    metrics = {"loss": 1.0} if partition is None else {"loss": 1.0, "partition-id": partition}
    return FitRes(Status(Code.OK, ""), ndarrays_to_parameters(arrays), num_examples, metrics)


def legacy_round(strategy, server_round, x, replies, manager=None):
    """configure_fit with model x, then aggregate_fit of (cid, FitRes) pairs."""
    strategy.configure_fit(server_round, ndarrays_to_parameters(x), manager or _Manager())
    results = [(_Proxy(cid), res) for cid, res in replies]
    return strategy.aggregate_fit(server_round, results, [])


def test_legacy_byzantine_partitions_get_exactly_the_attacks_vector():
    x = global_model()
    inner = spy(legacy_flwr.FedAvg)()
    strategy = Attacked(inner, attack="ipm", attack_params={"epsilon": EPS}, byzantine=[8, 9])
    assert isinstance(strategy, LegacyAttacked) and isinstance(strategy, legacy_flwr.Strategy)
    replies = [(str(i), fit_res(client_arrays(x, i), partition=i, num_examples=10 + i)) for i in range(NODES)]
    params, metrics = legacy_round(strategy, 1, x, replies)
    assert params is not None
    expected, rows = expected_crafted(x, [parameters_to_ndarrays(r.parameters) for _, r in replies[:8]], get_attack("ipm", epsilon=EPS), 2)
    seen = inner.seen
    for i in range(8):  # honest replies: the very same objects
        assert seen[i][1] is replies[i][1]
    for j, i in enumerate((8, 9)):
        res = seen[i][1]
        arrays = parameters_to_ndarrays(res.parameters)
        assert [(a.shape, a.dtype) for a in arrays] == [(a.shape, a.dtype) for a in x]
        np.testing.assert_allclose(flat(arrays), expected[j], rtol=0, atol=1e-6)
        assert res.num_examples == 10 + i and res.metrics == replies[i][1].metrics and res.status.code == Code.OK
    mu = rows.double().mean(0).numpy()
    distance = np.mean([np.linalg.norm((expected[j] - flat(x)).astype(np.float64) - mu) for j in range(2)])
    assert metrics["byzantine-replies"] == 2 and metrics["byzantine-partitions"] == "8,9"
    assert metrics["byzantine-nodes"] == "8,9"
    assert metrics["attack-distance"] == pytest.approx(distance, rel=1e-5)
    assert strategy.history == [{"round": 1, "byzantine-replies": 2, "honest-replies": 8, "nodes": ["8", "9"],
                                 "partitions": [8, 9], "attack-distance": metrics["attack-distance"], "skipped": None}]


def test_legacy_fraction_draws_a_fixed_seeded_set_of_all_clients():
    x = global_model()
    strategy = Attacked(legacy_flwr.FedAvg(), attack="ipm", byzantine=0.3, seed=4)
    for server_round in (1, 2, 3):
        replies = [(str(i), fit_res(client_arrays(x, i, server_round))) for i in range(NODES)]
        _, metrics = legacy_round(strategy, server_round, x, replies)
        assert metrics["byzantine-replies"] == 3
    ids = sorted(str(i) for i in range(NODES))
    assert strategy.byzantine_nodes == {ids[i] for i in byzantine_ids(NODES, 0.3, "fixed", 4)}
    assert all(sorted(h["nodes"]) == sorted(strategy.byzantine_nodes) for h in strategy.history)


def test_legacy_weights_rows_send_b_itself():
    x = global_model()
    inner = spy(legacy_flwr.FedAvg)()
    strategy = Attacked(inner, attack="ipm", attack_params={"epsilon": EPS}, byzantine=[0], rows="weights")
    replies = [(str(i), fit_res(client_arrays(x, i), partition=i)) for i in range(4)]
    legacy_round(strategy, 1, x, replies)
    honest = np.stack([flat(parameters_to_ndarrays(r.parameters)) for _, r in replies[1:]])
    np.testing.assert_allclose(flat(parameters_to_ndarrays(inner.seen[0][1].parameters)), -EPS * honest.mean(0), atol=1e-6)


def test_legacy_bad_honest_replies_are_left_to_the_wrapped_strategy():
    x = global_model()
    inner = spy(legacy.FedCMD)()
    strategy = Attacked(inner, attack="ipm", attack_params={"epsilon": EPS}, byzantine=[0, 1])
    good = [(str(i), fit_res(client_arrays(x, i), partition=i)) for i in range(6)]
    nan = (str(6), fit_res([np.full_like(x[0], np.nan), x[1]], partition=6))
    shape = (str(7), fit_res([x[0].reshape(4, 3), x[1]], partition=7))
    junk = (str(8), FitRes(Status(Code.OK, ""), ndarrays_to_parameters([]), 10, {"partition-id": 8}))
    junk[1].parameters.tensors = [b"not an array"]
    failed = (str(9), FitRes(Status(Code.FIT_NOT_IMPLEMENTED, "no"), ndarrays_to_parameters(x), 10, {"partition-id": 9}))
    params, metrics = legacy_round(strategy, 1, x, good + [nan, shape, junk, failed])
    assert params is not None and np.isfinite(flat(parameters_to_ndarrays(params))).all()
    assert metrics["byzantine-replies"] == 2 and metrics["rejected_clients"] == 4 and metrics["accepted_clients"] == 6
    assert strategy.history[-1]["honest-replies"] == 4
    for i in range(6, 10):
        assert inner.seen[i][1] is (good + [nan, shape, junk, failed])[i][1]
    expected, _ = expected_crafted(x, [parameters_to_ndarrays(r.parameters) for _, r in good[2:]], get_attack("ipm", epsilon=EPS), 2)
    np.testing.assert_allclose(flat(parameters_to_ndarrays(inner.seen[0][1].parameters)), expected[0], atol=1e-6)


def test_legacy_without_honest_replies_the_byzantine_ones_go_on_unchanged():
    x = global_model()
    inner = spy(legacy_flwr.FedAvg)()
    strategy = Attacked(inner, attack="ipm", byzantine=[0, 1])
    replies = [(str(i), fit_res(client_arrays(x, i), partition=i)) for i in range(2)]
    replies.append(("2", fit_res([np.full_like(x[0], np.inf), x[1]], partition=2)))
    with FlowerLog() as logged:
        _, metrics = legacy_round(strategy, 1, x, replies)
    assert [r for _, r in inner.seen] == [r for _, r in replies]
    assert metrics["byzantine-replies"] == 0 and strategy.history[-1]["skipped"] == "no honest reply to craft from"
    assert any("no honest reply" in line for line in logged.lines)


def test_legacy_a_round_that_was_not_configured_is_not_attacked():
    x = global_model()
    inner = spy(legacy_flwr.FedAvg)()
    strategy = Attacked(inner, attack="ipm", byzantine=[0])
    legacy_round(strategy, 1, x, [(str(i), fit_res(client_arrays(x, i), partition=i)) for i in range(3)])
    stale = [(_Proxy(str(i)), fit_res(client_arrays(x, i), partition=i)) for i in range(3)]
    strategy.aggregate_fit(2, stale, [])  # round 2 was never configured: its model is unknown
    assert [r for _, r in inner.seen] == [r for _, r in stale]
    assert strategy.history[-1]["skipped"].startswith("no model was sent this round")


def test_legacy_reply_without_partition_id_is_honest_with_one_warning():
    x = global_model()
    strategy = Attacked(legacy_flwr.FedAvg(), attack="ipm", byzantine=[0, 1])
    with FlowerLog() as logged:
        for server_round in (1, 2):
            replies = [(str(i), fit_res(client_arrays(x, i), partition=i if i else None)) for i in range(4)]
            _, metrics = legacy_round(strategy, server_round, x, replies)
            assert metrics["byzantine-replies"] == 1
    assert sum("reports no 'partition-id'" in line for line in logged.lines) == 1


# ------------------------------------------------------------------------------------- Message API
# task_identity: the fixture of conftest.py

class _Grid:
    def __init__(self, ids=range(101, 101 + NODES)):
        self.ids = list(ids)

    def get_node_ids(self):
        return list(self.ids)


def record(arrays):
    return ArrayRecord({"w": Array(arrays[0]), "b": Array(arrays[1])})


def arrays_of(msg):
    rec = msg.content["arrays"]
    return [rec["w"].numpy(), rec["b"].numpy()]


def train_reply(instruction, arrays, partition=None, num_examples=10):
    metrics = {"num-examples": num_examples, "train_loss": 0.5}
    if partition is not None:
        metrics["partition-id"] = partition
    content = RecordDict({"arrays": record(arrays), "metrics": MetricRecord(metrics)})
    return Message(content=content, reply_to=instruction)


def message_round(strategy, server_round, x, make_reply, grid=None, extra=()):
    instructions = list(strategy.configure_train(server_round, record(x), ConfigRecord({"lr": 0.1}), grid or _Grid()))
    replies = [make_reply(m, i) for i, m in enumerate(instructions)]
    replies = [r for r in replies if r is not None] + list(extra)
    return replies, strategy.aggregate_train(server_round, replies)


def test_message_fraction_replies_get_exactly_the_attacks_vector(task_identity):
    x = global_model()
    inner = spy(message_flwr.FedAvg)()
    strategy = Attacked(inner, attack="ipm", attack_params={"epsilon": EPS}, byzantine=0.2, seed=3)
    assert isinstance(strategy, MessageAttacked) and isinstance(strategy, message_flwr.Strategy)
    replies, (arrays, metrics) = message_round(strategy, 1, x, lambda m, i: train_reply(m, client_arrays(x, i), num_examples=10 + i))
    assert arrays is not None
    ids = sorted(_Grid().ids)
    byz = {ids[i] for i in byzantine_ids(NODES, 0.2, "fixed", 3)}
    assert strategy.byzantine_nodes == byz
    honest = [r for r in replies if r.metadata.src_node_id not in byz]
    expected, _ = expected_crafted(x, [arrays_of(r) for r in honest], get_attack("ipm", epsilon=EPS), 2)
    crafted = []
    for original, seen in zip(replies, inner.seen):
        if original.metadata.src_node_id not in byz:
            assert seen is original
            continue
        crafted.append(seen)
        assert seen.metadata.src_node_id == original.metadata.src_node_id
        assert list(seen.content.keys()) == ["arrays", "metrics"]
        assert list(seen.content["arrays"].keys()) == ["w", "b"]
        assert dict(seen.content["metrics"]) == dict(original.content["metrics"])
        got = arrays_of(seen)
        assert [(a.shape, a.dtype) for a in got] == [(a.shape, a.dtype) for a in x]
        np.testing.assert_allclose(flat(got), expected[len(crafted) - 1], rtol=0, atol=1e-6)
        np.testing.assert_array_equal(flat(arrays_of(original)), flat(client_arrays(x, replies.index(original))))
    assert len(crafted) == 2
    assert metrics["byzantine-replies"] == 2 and sorted(metrics["byzantine-nodes"]) == sorted(byz)
    assert "byzantine-partitions" not in metrics and metrics["attack-distance"] > 0
    assert strategy.history[0]["nodes"] == metrics["byzantine-nodes"]


def test_message_partition_ids_and_only_this_rounds_replies(task_identity):
    inner = spy(message_flwr.FedAvg)()
    strategy = Attacked(inner, attack="ipm", attack_params={"epsilon": EPS}, byzantine=[0, 5])
    x1 = global_model()
    message_round(strategy, 1, x1, lambda m, i: train_reply(m, client_arrays(x1, i, 1), partition=i))
    # Round 2: another model, other replies, and one reply from a node round 2 was not sent to.
    x2 = global_model(shift=1.0)
    stray = Message(content=RecordDict({"arrays": record([a + 50 for a in x2]),
                                        "metrics": MetricRecord({"num-examples": 10, "train_loss": 0.5, "partition-id": 7})}),
                    dst_node_id=0, message_type="train")
    stray.metadata.__dict__["_src_node_id"] = 999
    replies, (_, metrics) = message_round(strategy, 2, x2, lambda m, i: train_reply(m, client_arrays(x2, i, 2), partition=i),
                                          extra=[stray])
    assert inner.seen[-1] is stray and stray.metadata.src_node_id == 999
    honest = [arrays_of(r) for i, r in enumerate(replies[:NODES]) if i not in (0, 5)]
    expected, _ = expected_crafted(x2, honest, get_attack("ipm", epsilon=EPS), 2)
    np.testing.assert_allclose(flat(arrays_of(inner.seen[0])), expected[0], atol=1e-6)
    np.testing.assert_allclose(flat(arrays_of(inner.seen[5])), expected[1], atol=1e-6)
    assert metrics["byzantine-partitions"] == [0, 5] and strategy.history[-1]["honest-replies"] == 8


def test_message_bad_replies_do_not_crash_and_are_left_as_they_are(task_identity):
    x = global_model()
    inner = spy(message.FedCMD)()
    strategy = Attacked(inner, attack="ipm", byzantine=[0])

    def make(m, i):
        if i == 1:
            return train_reply(m, [np.full_like(x[0], np.nan), x[1]], partition=i)
        if i == 2:
            return train_reply(m, [x[0].reshape(4, 3), x[1]], partition=i)
        if i == 3:
            return Message(Error(code=0, reason="client crashed"), reply_to=m)
        if i == 4:
            return Message(content=RecordDict({"metrics": MetricRecord({"num-examples": 10, "partition-id": 4})}), reply_to=m)
        return train_reply(m, client_arrays(x, i), partition=i)

    replies, (arrays, metrics) = message_round(strategy, 1, x, make)
    assert arrays is not None and metrics["byzantine-replies"] == 1 and metrics["rejected_clients"] == 3
    assert all(inner.seen[i] is replies[i] for i in range(1, NODES))
    assert strategy.history[-1]["honest-replies"] == NODES - 5


# ------------------------------------------------------------------------------ adaptive attacks
class Probe(OmniscientAttack):
    """Sends the honest mean; asks the server's aggregate of the honest rows and remembers it."""

    name = "probe"
    needs_aggregate = True

    def __init__(self):
        self.seen = []

    def _craft(self, honest, view):
        self.seen.append((honest.clone(), view.aggregate(honest), view))
        return honest.mean(0)


@pytest.mark.parametrize("api", ["legacy", "message"])
def test_adaptive_aggregate_is_the_wrapped_strategys_aggregate(api, task_identity):
    x = global_model()
    probe = Probe()
    if api == "legacy":
        inner = legacy_flwr.FedMedian()
        strategy = Attacked(inner, attack=probe, byzantine=[0])
        legacy_round(strategy, 1, x, [(str(i), fit_res(client_arrays(x, i), partition=i)) for i in range(7)])
    else:
        inner = message_flwr.FedMedian()
        strategy = Attacked(inner, attack=probe, byzantine=[0])
        message_round(strategy, 1, x, lambda m, i: train_reply(m, client_arrays(x, i), partition=i) if i < 7 else None)
    honest, aggregate, view = probe.seen[0]
    assert honest.shape == (6, 16) and (view.n, view.f, view.server_round, view.rule) == (7, 1, 1, "FedMedian")
    np.testing.assert_allclose(aggregate.numpy(), np.median(honest.numpy(), axis=0), atol=1e-6)
    torch.testing.assert_close(view.model, torch.from_numpy(flat(x)))
    assert view.generator is not None


def test_rule_params_and_generator_per_round(task_identity):
    probe = Probe()
    strategy = Attacked(message_flwr.Krum(num_malicious_nodes=2), attack=probe, byzantine=[0, 1], seed=5)
    x = global_model()
    for server_round in (1, 1, 2):
        message_round(strategy, server_round, x, lambda m, i: train_reply(m, client_arrays(x, i), partition=i))
    views = [v for _, _, v in probe.seen]
    assert views[0].rule == "Krum" and views[0].rule_params["num_malicious_nodes"] == 2
    draws = [torch.rand(3, generator=v.generator) for v in views]
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])
    fed = Attacked(message.FedKrum(krum_f=2), attack=Probe(), byzantine=[0])
    message_round(fed, 1, x, lambda m, i: train_reply(m, client_arrays(x, i), partition=i))
    assert fed.attack.seen[0][2].rule == "FedKrum" and fed.attack.seen[0][2].rule_params["krum_f"] == 2


# --------------------------------------------------------------------- Flower's own strategies
LEGACY = {
    "FedAvg": lambda: legacy_flwr.FedAvg(),
    "Krum": lambda: legacy_flwr.Krum(num_malicious_clients=2),
    "MultiKrum": lambda: legacy_flwr.Krum(num_malicious_clients=2, num_clients_to_keep=3),
    "Bulyan": lambda: legacy_flwr.Bulyan(num_malicious_clients=1, to_keep=0),  # Flower's default Krum needs to_keep
    "FedMedian": lambda: legacy_flwr.FedMedian(),
    "FedTrimmedAvg": lambda: legacy_flwr.FedTrimmedAvg(beta=0.2),
    "FedKrum": lambda: legacy.FedKrum(krum_f=2),
    "FedCMD": lambda: legacy.FedCMD(),
}
MESSAGE = {
    "FedAvg": lambda: message_flwr.FedAvg(),
    "Krum": lambda: message_flwr.Krum(num_malicious_nodes=2),
    "MultiKrum": lambda: message_flwr.MultiKrum(num_malicious_nodes=2, num_nodes_to_select=3),
    "Bulyan": lambda: message_flwr.Bulyan(num_malicious_nodes=1),
    "FedMedian": lambda: message_flwr.FedMedian(),
    "FedTrimmedAvg": lambda: message_flwr.FedTrimmedAvg(beta=0.2),
    "FedKrum": lambda: message.FedKrum(krum_f=2),
    "FedCMD": lambda: message.FedCMD(),
}
ROBUST = {"Krum", "MultiKrum", "Bulyan", "FedMedian", "FedTrimmedAvg", "FedKrum", "FedCMD"}


def _one_round(api, name):
    x = global_model()
    if api == "legacy":
        strategy = Attacked(LEGACY[name](), attack="ipm", attack_params={"epsilon": 100.0}, byzantine=0.2)
        params, metrics = legacy_round(strategy, 1, x, [(str(i), fit_res(client_arrays(x, i))) for i in range(NODES)])
        new = parameters_to_ndarrays(params)
    else:
        strategy = Attacked(MESSAGE[name](), attack="ipm", attack_params={"epsilon": 100.0}, byzantine=0.2)
        _, (arrays, metrics) = message_round(strategy, 1, x, lambda m, i: train_reply(m, client_arrays(x, i)))
        new = [arrays["w"].numpy(), arrays["b"].numpy()]
    return flat(new) - flat(x), metrics


@pytest.mark.parametrize("name", sorted(LEGACY))
@pytest.mark.parametrize("api", ["legacy", "message"])
def test_works_with_flowers_and_fedrobusts_strategies(api, name, task_identity):
    step, metrics = _one_round(api, name)
    assert metrics["byzantine-replies"] == 2 and np.isfinite(step).all()
    if name in ROBUST:  # the crafted replies (−100 μ) do not move a robust rule far from the honest step (≈ 0.1)
        assert np.abs(step - 0.1).max() < 0.3, step
    else:  # the mean is dragged to (8 − 200)/10 · μ ≈ −1.9
        assert (step < -0.5).all(), step


# ------------------------------------------------------------------------------------- arguments
def test_bad_arguments_raise():
    with pytest.raises(TypeError, match="omniscient"):
        Attacked(legacy_flwr.FedAvg(), attack="bit-flip")
    with pytest.raises(TypeError, match="Flower strategy"):
        Attacked(object(), attack="ipm")
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        Attacked(legacy_flwr.FedAvg(), attack="ipm", byzantine=1.5)
    with pytest.raises(TypeError, match=r"write \[2\]"):
        Attacked(legacy_flwr.FedAvg(), attack="ipm", byzantine=2)
    with pytest.raises(ValueError, match="rows"):
        Attacked(legacy_flwr.FedAvg(), attack="ipm", rows="grads")
    with pytest.raises(ValueError, match="unknown attack"):
        Attacked(legacy_flwr.FedAvg(), attack="no-such-attack")
    with pytest.raises(TypeError, match="already"):
        Attacked(Attacked(legacy_flwr.FedAvg(), attack="ipm"), attack="ipm")


def test_the_wrapper_delegates_and_deep_copies():
    import copy

    strategy = Attacked(legacy_flwr.FedAvg(fraction_fit=0.3), attack="ipm")
    assert strategy.fraction_fit == 0.3 and strategy.num_fit_clients(10) == (3, 2)
    clone = copy.deepcopy(strategy)
    assert clone.fraction_fit == 0.3 and clone.strategy is not strategy.strategy
    with pytest.raises(AttributeError):
        strategy.no_such_attribute


# ------------------------------------------------------- the example app, through `flwr run` (slow)
# examples/attack-flower-strategies: Flower's own FedAvg and Krum (Message API) wrapped by Attacked.
# Two of the ten simulated nodes are Byzantine (byzantine-fraction = 0.2): their replies are crafted
# at the server. The run must finish, the wrapper's history must record two crafted replies in every
# round, and under IPM with ε = 100 plain FedAvg must end with a worse central loss than Krum.
APP = Path("examples") / "attack-flower-strategies"
ROUNDS = 3
PARAMS = {"ipm": "epsilon=100", "alie": ""}
ATTACKS = [
    pytest.param(name, marks=pytest.mark.skipif(name not in REGISTERED, reason=f"attack {name!r} is not registered"))
    for name in ("ipm", "alie")
]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run_app(env, run_config):
    """`flwr run` the example; check it completed; return its log."""
    run_id = flwr_json(
        [
            "run", str(APP), "--format", "json", "--run-config", run_config,
            "--federation-config", f"num-supernodes={NODES} client-resources-num-cpus=1",
        ],
        env,
    )["run-id"]
    status = wait_for_run(run_id, env, 480)
    logs = ANSI.sub("", flwr(["log", str(run_id), "--show"], env).stdout)
    assert status == "finished:completed", f"{status}\n{logs[-5000:]}"
    return logs


def final_loss(logs):
    """The server's central loss after the last round (non-finite losses are reported as 1e30)."""
    values = re.findall(r"'loss': '([-+0-9.eE]+|nan|inf)'", logs)
    return float(values[-1])


def attack_history(logs):
    return json.loads(re.search(r"attack-history (\[.*\])", logs).group(1))


def test_the_example_readme_shows_the_two_lines():
    readme = (ROOT / APP / "README.md").read_text()
    server = (ROOT / APP / "attack_flower_strategies" / "server_app.py").read_text()
    for line in ("from fedrobust.plugin import Attacked", "Attacked(FedAvg("):
        assert line in readme
    assert "from fedrobust.plugin import Attacked" in server and 'attack = "alie"' in (ROOT / APP / "pyproject.toml").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("attack", ATTACKS)
def test_flowers_fedavg_and_krum_under_attack(attack, flwr_env):
    losses = {}
    for strategy in ("fedavg", "krum"):
        logs = run_app(flwr_env, f"num-server-rounds={ROUNDS} strategy='{strategy}' attack='{attack}' "
                                 f"attack-params='{PARAMS[attack]}'")
        history = attack_history(logs)
        assert [h["round"] for h in history] == list(range(1, ROUNDS + 1)), history
        assert all(h["byzantine-replies"] == 2 and h["honest-replies"] == NODES - 2 and h["skipped"] is None
                   for h in history), history
        assert len({tuple(sorted(h["nodes"])) for h in history}) == 1  # the same two nodes every round
        assert f"'byzantine-replies': 2" in logs  # in the train metrics Flower logs
        losses[strategy] = final_loss(logs)
    print(f"{attack}: final central loss {losses}")
    if attack == "ipm":
        assert losses["fedavg"] > losses["krum"], losses
