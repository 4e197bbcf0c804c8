"""The plugin strategies (fedrobust.plugin): robust drop-in FedAvg replacements for ordinary Flower
clients, legacy and Message API, driven with hand-built replies."""

import logging

import numpy as np
import pytest
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Error, Message, MetricRecord, RecordDict
from flwr.common import Code, EvaluateRes, FitRes, Parameters, Status, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server.strategy import FedAvg as LegacyFedAvg
from flwr.serverapp.exception import InconsistentMessageReplies
from flwr.serverapp.strategy import FedAvg as MessageFedAvg

from _flower_log import FlowerLog
from fedrobust.aggregators import coordinate_median
from fedrobust.plugin import RULES, WeightsAggregator
from fedrobust.plugin import legacy, message
from fedrobust.aggregators.rules import BGMDRule, CMDRule, Rule, RuleStep
from fedrobust.strategies import STRATEGIES

SHAPES = [(3, 4), (4,)]
NAMES = sorted(RULES)
HONEST, ATTACKERS = 8, 2


def server_update(global_arrays, server_round):
    """FLTrust's server update for these tests: the honest clients' mean delta (+0.1 everywhere)."""
    return [np.full_like(a, 0.1) for a in global_arrays]


# Rule parameters for the resistance test: BGMD on every coordinate (its block behaviour has its own
# test). Centered clipping with tau of the honest deltas' order (its guarantee assumes it; from v0 = 0
# its default tau = 10 lets each of the two attackers pull 10 / n): 3 iterations, bias f·tau/(n - f).
# FLTrust's plugin needs the server's own update.
PARAMS = {
    "bgmd": {"rho": 1.0},
    "centered-clipping": {"tau": 0.2, "iterations": 3},
    "fltrust": {"server_update_fn": server_update},
}


def global_model():
    return [np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4), np.full(4, 0.5, np.float32)]


# Attackers' scales: -100x, and huge finite updates x + s (w - x) up to the validator's bound
# (one client with 1e30-sized entries once stopped the GM-based plugins for good).
SCALES = [100.0, 1e20, 1e30]


def client_models(x, seed=0, scale=100.0):
    """HONEST models at x + 0.1 (+ small noise), then ATTACKERS scaled bit-flippers at x - scale * 0.1 * (i+1)."""
    rng = np.random.default_rng(seed)
    honest = [[a + np.float32(0.1) + rng.normal(0, 0.01, a.shape).astype(np.float32) for a in x] for _ in range(HONEST)]
    attackers = [[a - np.float32(scale * 0.1 * (i + 1)) for a in x] for i in range(ATTACKERS)]
    return honest, attackers


def flat(arrays):
    return np.concatenate([np.asarray(a).reshape(-1) for a in arrays])


# ------------------------------------------------------------------------------------------ legacy
class _Proxy:
    def __init__(self, cid):
        self.cid = cid


class _Manager:
    """Just what FedAvg.configure_fit asks of a client manager."""

    def num_available(self):
        return 10

    def sample(self, num_clients, min_num_clients=None):
        return [_Proxy(str(i)) for i in range(num_clients)]


def fit_res(arrays, num_examples=10, code=Code.OK):
    return FitRes(Status(code, "boom" if code != Code.OK else ""), ndarrays_to_parameters(arrays), num_examples, {"loss": 1.0})


def legacy_strategy(name, **kwargs):
    strategy = legacy.PLUGINS[name](**{**PARAMS.get(name, {}), **kwargs})
    strategy.configure_fit(1, ndarrays_to_parameters(global_model()), _Manager())
    return strategy


def legacy_aggregate(strategy, replies, server_round=1):
    results = [(_Proxy(str(i)), r if isinstance(r, FitRes) else fit_res(r)) for i, r in enumerate(replies)]
    params, metrics = strategy.aggregate_fit(server_round, results, [])
    return (None if params is None else parameters_to_ndarrays(params)), metrics


def test_plugins_use_fedrobusts_strategy_names():
    assert set(legacy.PLUGINS) == set(message.PLUGINS) == set(RULES)
    assert set(RULES) <= set(STRATEGIES)
    for name in NAMES:
        params = PARAMS.get(name, {})
        assert legacy.PLUGINS[name](**params).name == message.PLUGINS[name](**params).name == name
        assert legacy.PLUGINS[name].__name__ == message.PLUGINS[name].__name__


@pytest.mark.parametrize("name", NAMES)
def test_legacy_keeps_fedavg_constructor_arguments(name):
    calls = []
    strategy = legacy.PLUGINS[name](
        **PARAMS.get(name, {}), fraction_fit=0.3, fraction_evaluate=0.0, min_fit_clients=3, min_available_clients=4,
        on_fit_config_fn=lambda r: {"lr": 0.1}, initial_parameters=ndarrays_to_parameters(global_model()),
        fit_metrics_aggregation_fn=lambda m: calls.append(m) or {"n": len(m)}, accept_failures=True,
    )
    assert isinstance(strategy, LegacyFedAvg)
    assert (strategy.fraction_fit, strategy.min_fit_clients, strategy.min_available_clients) == (0.3, 3, 4)
    assert strategy.configure_evaluate(1, strategy.initialize_parameters(None), _Manager()) == []
    assert strategy.global_arrays is not None and strategy.initial_parameters is None
    pairs = strategy.configure_fit(1, ndarrays_to_parameters(global_model()), _Manager())
    assert len(pairs) == 3 and pairs[0][1].config == {"lr": 0.1}
    honest, _ = client_models(global_model())
    _, metrics = legacy_aggregate(strategy, honest)
    assert metrics["n"] == HONEST and metrics["accepted_clients"] == HONEST and len(calls) == 1


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("name", NAMES)
def test_legacy_robust_aggregate_resists_bit_flippers(name, scale):
    x = global_model()
    honest, attackers = client_models(x, scale=scale)
    new, metrics = legacy_aggregate(legacy_strategy(name), honest + attackers)
    step = flat(new) - flat(x)
    assert np.all(np.abs(step - 0.1) < 0.05), step
    assert metrics["accepted_clients"] == HONEST + ATTACKERS and metrics["rejected_clients"] == 0
    # Flower's FedAvg on the same replies is dragged far away (so this test can fail).
    plain, _ = LegacyFedAvg().aggregate_fit(1, [(None, fit_res(r)) for r in honest + attackers], [])
    assert np.all(flat(parameters_to_ndarrays(plain)) - flat(x) < -0.02 * scale)


def test_legacy_cmd_is_the_coordinate_median_of_the_deltas():
    x = global_model()
    honest, attackers = client_models(x)
    new, _ = legacy_aggregate(legacy_strategy("cmd"), honest + attackers)
    deltas = torch.from_numpy(np.stack([flat(r) - flat(x) for r in honest + attackers]))
    np.testing.assert_allclose(flat(new), flat(x) + coordinate_median(deltas).numpy(), rtol=0, atol=1e-6)


def malformed_legacy_replies(x):
    junk = Parameters(tensors=[b"not an array"], tensor_type="numpy.ndarray")
    return {
        "shape": [x[0].reshape(4, 3), x[1]],
        "dtype": [x[0].astype(np.float64), x[1]],
        "count": [x[0]],
        "nan": [np.full_like(x[0], np.nan), x[1]],
        "inf": [x[0], np.full_like(x[1], np.inf)],
        "magnitude": [np.full_like(x[0], 1e38), x[1]],
        "status": fit_res(x, code=Code.FIT_NOT_IMPLEMENTED),
        "negative examples": fit_res(x, num_examples=-1),
        "bool examples": fit_res(x, num_examples=True),
        "bytes": FitRes(Status(Code.OK, ""), junk, 10, {}),
    }


def test_legacy_rejects_and_counts_malformed_replies():
    x = global_model()
    honest, _ = client_models(x)
    bad = malformed_legacy_replies(x)
    strategy = legacy_strategy("cmd")
    with FlowerLog() as logged:
        new, metrics = legacy_aggregate(strategy, honest + list(bad.values()))
    # The log names the sender (its client id), not the reply's position in the round.
    assert any(f"the reply of client {HONEST} rejected:" in line for line in logged.lines), logged.lines
    reference, _ = legacy_aggregate(legacy_strategy("cmd"), honest)
    np.testing.assert_array_equal(flat(new), flat(reference))
    assert np.isfinite(flat(new)).all()
    assert metrics["rejected_clients"] == len(bad) and metrics["accepted_clients"] == HONEST
    reasons = dict(strategy.round_rejections)
    assert sorted(reasons) == sorted(str(HONEST + i) for i in range(len(bad)))
    text = " | ".join(reasons.values())
    for fragment in ("shape (4, 3)", "dtype float64", "expected 2 arrays", "non-finite", "exceeds the bound",
                     "FIT_NOT_IMPLEMENTED", "negative", "not an integer", "do not deserialise"):
        assert fragment in text, (fragment, text)


def test_legacy_round_without_accepted_reply_keeps_the_model():
    x = global_model()
    strategy = legacy_strategy("gmd")
    new, metrics = legacy_aggregate(strategy, list(malformed_legacy_replies(x).values()))
    assert new is None and metrics["accepted_clients"] == 0 and metrics["rejected_clients"] == 10
    assert legacy_strategy("gmd").aggregate_fit(1, [], []) == (None, {})


def test_legacy_metrics_fn_sees_only_accepted_replies_and_cannot_crash_the_round():
    x = global_model()
    honest, _ = client_models(x)
    seen = []
    strategy = legacy_strategy("krum", fit_metrics_aggregation_fn=lambda m: seen.append(m) or {"ok": 1})
    legacy_aggregate(strategy, honest + [[x[0]]])
    assert len(seen[0]) == HONEST

    def broken(_):
        raise ZeroDivisionError

    new, metrics = legacy_aggregate(legacy_strategy("krum", fit_metrics_aggregation_fn=broken), honest)
    assert new is not None and metrics["accepted_clients"] == HONEST


def test_legacy_needs_the_global_model():
    with pytest.raises(RuntimeError, match="configure_fit"):
        legacy.FedGMD().aggregate_fit(1, [(_Proxy("0"), fit_res(global_model()))], [])


def test_legacy_evaluate_drops_untrusted_losses():
    ok = EvaluateRes(Status(Code.OK, ""), 0.5, 10, {"accuracy": 0.9})
    nan = EvaluateRes(Status(Code.OK, ""), float("nan"), 10, {"accuracy": 0.9})
    negative = EvaluateRes(Status(Code.OK, ""), 0.1, -10, {"accuracy": 0.9})
    loss, _ = legacy.FedGMD().aggregate_evaluate(1, [(None, ok), (None, nan), (None, negative)], [])
    assert loss == pytest.approx(0.5)
    assert legacy.FedGMD().aggregate_evaluate(1, [(None, nan)], []) == (None, {})


@pytest.mark.parametrize(
    "cls, kwargs, error",
    [
        (legacy.FedTrimmedMean, {"beta": 0.5}, ValueError),
        (legacy.FedBGMD, {"rho": 0.0}, ValueError),
        (legacy.FedBGMD, {"memory": "rows"}, ValueError),
        (legacy.FedBGMD, {"selection": "best"}, ValueError),
        (legacy.FedKrum, {"krum_f": -2}, ValueError),
        (legacy.FedGMD, {"gm_tol": 0}, ValueError),
        (legacy.FedNormThreshold, {"beta": 1.0}, ValueError),
        (legacy.FedGMD, {"rho": 0.1}, TypeError),  # another rule's parameter is not FedGMD's
        (message.FedCMD, {"beta": 0.1}, TypeError),
        (message.FedTrimmedMean, {"beta": -0.1}, ValueError),
    ],
)
def test_bad_parameters_raise(cls, kwargs, error):
    with pytest.raises(error):
        cls(**kwargs)


# -------------------------------------------------------------------------------- the shared core
def test_bgmd_moves_the_block_and_keeps_the_rest_in_memory():
    x = global_model()
    honest, attackers = client_models(x)
    strategy = legacy_strategy("bgmd", rho=0.25, selection="top-k")
    new, metrics = legacy_aggregate(strategy, honest + attackers)
    step = flat(new) - flat(x)
    moved = np.abs(step) > 1e-6
    assert moved.sum() == metrics["block_size"] == 4
    assert np.all(np.abs(step[moved] - 0.1) < 0.05)
    memory = strategy.aggregator.state
    assert memory is not None and memory.shape == (16,)
    # The memory holds (GM-weighted) the unselected residual: about the honest 0.1, not the attackers' pull.
    assert torch.all(memory[torch.from_numpy(~moved)].sub(0.1).abs() < 0.05)
    assert torch.all(memory[torch.from_numpy(moved)] == 0)


class _Explode(Rule):
    name = "explode"

    def __call__(self, deltas, state, server_round, scale=1.0):
        return RuleStep(torch.full((deltas.shape[1],), float("inf")), scale, torch.zeros(deltas.shape[1]), {})


def test_a_non_finite_step_is_skipped():
    x = global_model()
    aggregator = WeightsAggregator(_Explode())
    out = aggregator.aggregate(1, x, client_models(x)[0])
    assert out.metrics["skipped_step"] == 1 and aggregator.state is None
    np.testing.assert_array_equal(flat(out.arrays), flat(x))


def test_non_float_arrays_are_validated_and_kept_from_the_global_model():
    x = [np.zeros(3, np.float64), np.array(7, np.int64)]
    replies = [[np.full(3, 1.0), np.array(99, np.int64)], [np.full(3, 3.0), np.array(5, np.int64)],
               [np.full(3, 2.0), np.array(1, np.int32)]]
    out = WeightsAggregator(CMDRule()).aggregate(1, x, replies)
    assert out.arrays[0].dtype == np.float64 and out.arrays[0].tolist() == [2.0, 2.0, 2.0]
    assert out.arrays[1] == 7 and out.arrays[1].dtype == np.int64
    assert out.rejections == [(2, "array 1 has dtype int32, expected int64")]
    with pytest.raises(ValueError, match="no floating-point array"):
        WeightsAggregator(CMDRule()).aggregate(1, [np.zeros(3, np.int64)], [])


def test_bgmd_block_draw_is_seeded_by_round():
    x = global_model()
    honest, _ = client_models(x)
    a = WeightsAggregator(BGMDRule(rho=0.25, seed=3)).aggregate(5, x, honest)
    b = WeightsAggregator(BGMDRule(rho=0.25, seed=3)).aggregate(5, x, honest)
    np.testing.assert_array_equal(flat(a.arrays), flat(b.arrays))


# ------------------------------------------------------------------------------------- Message API
# task_identity: the fixture of conftest.py

class _Grid:
    def get_node_ids(self):
        return list(range(1, HONEST + ATTACKERS + 20))


def global_record():
    return ArrayRecord({"w": Array(global_model()[0]), "b": Array(global_model()[1])})


def reply(instruction, arrays=None, metrics=None):
    records = {}
    if arrays is not None:
        records["arrays"] = ArrayRecord({k: Array(v) for k, v in arrays.items()})
    records["metrics"] = MetricRecord({"num-examples": 10, "train_loss": 0.5} if metrics is None else metrics)
    return Message(content=RecordDict(records), reply_to=instruction)


def message_round(strategy, client_arrays):
    """configure_train, then replies built by ``client_arrays(instruction, position)``; returns (arrays, metrics)."""
    instructions = list(strategy.configure_train(1, global_record(), ConfigRecord({"lr": 0.1}), _Grid()))
    replies = [client_arrays(m, i) for i, m in enumerate(instructions)]
    return strategy.aggregate_train(1, [r for r in replies if r is not None])


def as_dict(arrays):
    return {"w": arrays[0], "b": arrays[1]}


@pytest.mark.parametrize("name", NAMES)
def test_message_keeps_fedavg_constructor_arguments(name, task_identity):
    strategy = message.PLUGINS[name](
        0.5, 0.0, min_train_nodes=HONEST + ATTACKERS, weighted_by_key="n", arrayrecord_key="model",
        train_metrics_aggr_fn=lambda records, key: MetricRecord({"replies": len(records)}), **PARAMS.get(name, {}),
    )
    assert isinstance(strategy, MessageFedAvg)
    assert (strategy.fraction_train, strategy.fraction_evaluate, strategy.weighted_by_key) == (0.5, 0.0, "n")
    strategy.summary()
    instructions = list(strategy.configure_train(1, global_record(), ConfigRecord(), _Grid()))
    assert len(instructions) == 14 and "model" in instructions[0].content
    honest, _ = client_models(global_model())
    _, metrics = strategy.aggregate_train(
        1, [reply(m, as_dict(honest[i % HONEST]), {"n": 3}) for i, m in enumerate(instructions)]
    )
    assert metrics["replies"] == 14 and metrics["accepted_clients"] == 14


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("name", NAMES)
def test_message_robust_aggregate_resists_bit_flippers(name, scale, task_identity):
    x = global_model()
    honest, attackers = client_models(x, scale=scale)
    models = honest + attackers
    strategy = message.PLUGINS[name](min_train_nodes=len(models), fraction_train=0.0001, **PARAMS.get(name, {}))
    new, metrics = message_round(strategy, lambda m, i: reply(m, as_dict(models[i])))
    step = flat([new["w"].numpy(), new["b"].numpy()]) - flat(x)
    assert np.all(np.abs(step - 0.1) < 0.05), step
    assert metrics["accepted_clients"] == len(models) and metrics["train_loss"] == pytest.approx(0.5)


def test_message_rejects_and_counts_malformed_replies(task_identity):
    x = global_model()
    honest, _ = client_models(x)
    good = as_dict(x)
    bad = [
        lambda m: Message(content=RecordDict({"metrics": MetricRecord({"num-examples": 10})}), reply_to=m),
        lambda m: reply(m, {"w": x[0]}),
        lambda m: reply(m, {**good, "extra": x[1]}),
        lambda m: reply(m, {"w": x[0].T.copy(), "b": x[1]}),
        lambda m: reply(m, {"w": x[0], "b": np.full(4, np.nan, np.float32)}),
        lambda m: reply(m, {"w": np.full((3, 4), -1e38, np.float32), "b": x[1]}),
        lambda m: reply(m, good, {"train_loss": 0.5}),
        lambda m: reply(m, good, {"num-examples": [1, 2]}),
        lambda m: reply(m, good, {"num-examples": -3}),
        lambda m: Message(
            content=RecordDict({"a": ArrayRecord({"w": Array(x[0]), "b": Array(x[1])}), "b": ArrayRecord(),
                                "metrics": MetricRecord({"num-examples": 1})}), reply_to=m),
    ]
    n = len(honest)
    strategy = message.FedCMD(min_train_nodes=n + len(bad) + 2, fraction_train=0.0001)

    def client(m, i):
        if i < n:
            return reply(m, as_dict(honest[i]))
        if i < n + len(bad):
            return bad[i - n](m)
        return Message(Error(code=0, reason="client crashed"), reply_to=m)

    with FlowerLog() as logged:
        new, metrics = message_round(strategy, client)
    node_ids = [node for node, _ in strategy.round_rejections]
    assert node_ids and all(any(f"the reply of node {node} rejected:" in line for line in logged.lines) for node in node_ids)
    assert metrics["rejected_clients"] == len(bad) and metrics["accepted_clients"] == n
    assert metrics["failed_clients"] == 2
    reference = message.FedCMD(min_train_nodes=n, fraction_train=0.0001)
    expected, _ = message_round(reference, lambda m, i: reply(m, as_dict(honest[i])))
    for key in ("w", "b"):
        np.testing.assert_array_equal(new[key].numpy(), expected[key].numpy())
    text = " | ".join(reason for _, reason in strategy.round_rejections)
    for fragment in ("exactly one ArrayRecord, got 0", "missing ['b']", "unexpected ['extra']", "shape (4, 3)",
                     "non-finite", "exceeds the bound", "'num-examples' is not a number", ">= 0: -3",
                     "exactly one ArrayRecord, got 2"):
        assert fragment in text, (fragment, text)
    # Flower's own FedAvg gives up the whole round on one such reply.
    plain = MessageFedAvg(min_train_nodes=n + 1, fraction_train=0.0001)
    with pytest.raises(InconsistentMessageReplies):
        message_round(plain, lambda m, i: reply(m, as_dict(honest[i])) if i < n else bad[1](m))


def test_message_round_without_accepted_reply_keeps_the_model(task_identity):
    strategy = message.FedGMD(min_train_nodes=3, fraction_train=0.0001)
    arrays, metrics = message_round(strategy, lambda m, i: reply(m, {"w": global_model()[0]}))
    assert arrays is None and metrics["rejected_clients"] == 3 and metrics["accepted_clients"] == 0
    with pytest.raises(RuntimeError, match="configure_train"):
        message.FedGMD().aggregate_train(1, [])


def test_message_evaluate_drops_inconsistent_replies(task_identity):
    strategy = message.FedGMD(min_evaluate_nodes=3, fraction_evaluate=0.0001)
    instructions = list(strategy.configure_evaluate(1, global_record(), ConfigRecord(), _Grid()))
    replies = [reply(instructions[0], metrics={"num-examples": 10, "acc": 0.8}),
               reply(instructions[1], metrics={"acc": 0.1}),
               Message(Error(code=0, reason="x"), reply_to=instructions[2])]
    assert strategy.aggregate_evaluate(1, replies)["acc"] == pytest.approx(0.8)
    with pytest.raises(InconsistentMessageReplies):
        MessageFedAvg().aggregate_evaluate(1, replies)


@pytest.mark.parametrize("name", NAMES)
def test_rules_agree_across_devices(name, device):
    x = global_model()
    honest, attackers = client_models(x)
    rule = RULES[name](**PARAMS.get(name, {}))
    on_device = WeightsAggregator(rule, device=device).aggregate(1, x, honest + attackers)
    on_cpu = WeightsAggregator(rule).aggregate(1, x, honest + attackers)
    np.testing.assert_allclose(flat(on_device.arrays), flat(on_cpu.arrays), rtol=0, atol=1e-5)
    assert all(a.dtype == np.float32 for a in on_device.arrays)
