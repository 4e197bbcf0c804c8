"""The malformed attack against every strategy: no crash, rejections counted with reasons, x finite."""

import numpy as np
import pytest
import torch

from _strategies_ii import reply
from fedrobust.attacks import FAULTS, Malformed, get_attack
from fedrobust.attacks.malformed import VALUE_FAULTS
from fedrobust.config import RunConfig
from fedrobust.run.inprocess import run_inprocess
from fedrobust.strategies import STRATEGIES, MeanSGD
from fedrobust.core.validation import MAGNITUDE_BOUND, check_values



def malformed_run(strategy, fault, rounds=3, **keys):
    cfg = RunConfig(
        strategy=strategy, dataset="breast-cancer", model="logistic", num_clients=5, clients_per_round=5,
        rounds=rounds, lr=0.1, batch_size=16, device="cpu", attack="malformed", attack_params=f"fault={fault}",
        byzantine_fraction=0.4, beta=0.45 if strategy != "trimmed-mean" else 0.4, **keys,
    )
    seen = []
    results = run_inprocess(cfg, after_round=lambda strategy, rnd: seen.append(strategy.x.clone()))
    return results, seen


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_strategy_survives_every_fault(strategy):
    keys = {"norm_option": 1} if strategy == "norm-threshold" else {}
    for fault in FAULTS:
        results, models = malformed_run(strategy, fault, rounds=2, **keys)
        assert all(torch.isfinite(x).all() for x in models), (strategy, fault)
        rounds = results["rounds"]
        assert len(rounds) == 2
        rejected = sum(r["rejected_clients"] for r in rounds)
        sign_only = (strategy in ("rsa", "c-rsa") and fault in VALUE_FAULTS) or (strategy == "signsgd-mv" and fault == "huge")  # sign messages
        unused = fault == "metrics" and strategy != "norm-threshold"  # metrics only option 1 reads
        if sign_only or unused:
            assert rejected == 0, (strategy, fault)
            continue
        failed = sum(r["failed_clients"] for r in rounds)
        if strategy in ("rsa", "c-rsa") and fault == "payload":  # some truncated bit-planes still decode
            assert rejected + failed >= 1, (strategy, fault, rounds)
        else:
            assert rejected + failed == 4, (strategy, fault, rounds)  # 2 Byzantine clients x 2 rounds
        for r in rounds:
            assert len(r["rejections"]) == r["rejected_clients"]
            assert all(p in r["byzantine_clients"] and isinstance(why, str) and why for p, why in r["rejections"])


def test_cycle_draws_several_faults_and_logs_reasons(caplog):
    results, models = malformed_run("bgmd", "cycle", rounds=6)
    reasons = {why for r in results["rounds"] for _, why in r["rejections"]}
    assert len(reasons) >= 3 and torch.isfinite(models[-1]).all()
    assert "rejected" in caplog.text


def test_value_and_wire_hooks_agree_on_the_drawn_fault():
    a = Malformed()
    picks = {a.choose(torch.Generator().manual_seed(s)) for s in range(64)}
    assert picks == set(FAULTS)
    for s in range(16):
        fault = a.choose(torch.Generator().manual_seed(s))
        out = a.corrupt(torch.ones(4), torch.Generator().manual_seed(s))
        arrays, _ = a.corrupt_reply([np.ones(4, np.float32)], {"m": 1.0}, torch.Generator().manual_seed(s))
        assert (check_values(out.numpy()) is not None) == (fault in VALUE_FAULTS)
        assert (fault in VALUE_FAULTS or fault == "metrics") == (
            len(arrays) == 1 and arrays[0].shape == (4,) and arrays[0].dtype == np.float32
        )


def test_bad_fault_name_lists_the_allowed():
    with pytest.raises(ValueError, match="fault must be one of nan, inf, huge, .*cycle"):
        get_attack("malformed", fault="zeros")


# ------------------------------------------------------------------- the bound and the model's finiteness
SHAPES = [(2, 3), (1,)]


def mean_sgd(lr=1.0):
    cfg = RunConfig(strategy="mean-sgd", num_clients=4, clients_per_round=4, device="cpu", lr=lr)
    return MeanSGD(cfg, torch.zeros(7), SHAPES)


def arrays_of(value):
    v = np.full(7, value, np.float32)
    return [v[:6].reshape(2, 3), v[6:]]


@pytest.mark.parametrize("value", [1e38, -1e31, np.nan, np.inf])
def test_absurd_or_non_finite_entries_are_rejected(value):
    s = mean_sgd()
    _, metrics = s.aggregate_fit(1, [reply(arrays_of(1.0)), reply(arrays_of(value))], [])
    assert metrics["rejected_clients"] == 1 and torch.equal(s.x, -torch.ones(7))


@pytest.mark.parametrize("value", [-100.0, 1e4, 1e29])
def test_legitimate_attack_magnitudes_are_accepted(value):
    assert value <= MAGNITUDE_BOUND
    s = mean_sgd()
    _, metrics = s.aggregate_fit(1, [reply(arrays_of(1.0)), reply(arrays_of(value))], [])
    assert metrics["rejected_clients"] == 0 and metrics["accepted_clients"] == 2


def test_a_step_that_overflows_is_skipped_and_recorded():
    s = mean_sgd(lr=1e10)  # lr * 1e29 overflows float32
    s.aggregate_fit(1, [reply(arrays_of(1.0))], [])
    before = s.x.clone()
    s.aggregate_fit(2, [reply(arrays_of(1e29)), reply(arrays_of(1e29))], [])
    assert torch.equal(s.x, before)
    rec = s._open[2][1]
    assert rec.extra["skipped_step"] is True and s._open[1][1].extra["skipped_step"] is False


def test_every_reply_rejected_leaves_the_model_and_the_run_continues():
    s = mean_sgd()
    s.aggregate_fit(1, [reply(arrays_of(np.nan)), reply(arrays_of(1e38))], [])
    assert torch.equal(s.x, torch.zeros(7))
    rec = s._open[1][1]
    assert rec.rejected_clients == 2 and len(rec.extra["rejections"]) == 2
    s.aggregate_fit(2, [reply(arrays_of(1.0))], [])
    assert torch.equal(s.x, -torch.ones(7))


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["bgmd", "norm-threshold", "c-rsa"])
def test_malformed_attack_through_the_engine(strategy):
    """The cycling malformed attack through Flower's simulation engine: the run completes, the faults are
    rejected (or, for sign protocols and unread metrics, harmless) and the model stays finite."""
    import fedrobust

    results = fedrobust.simulate(
        strategy=strategy, dataset="breast-cancer", model="logistic", num_clients=5, clients_per_round=5,
        rounds=4, lr=0.1, batch_size=16, device="cpu", attack="malformed", byzantine_fraction=0.4, beta=0.45,
        **({"norm_option": 1} if strategy == "norm-threshold" else {}),
    )
    rounds = results["rounds"]
    assert len(rounds) == 4 and all(r["accuracy"] is not None for r in rounds)
    assert all(np.isfinite(r["loss"]) for r in rounds)
    for r in rounds:
        assert all(p in r["byzantine_clients"] for p, _ in r["rejections"])
        assert r["rejected_clients"] + r["failed_clients"] <= 2
    if strategy != "c-rsa":
        assert sum(r["rejected_clients"] + r["failed_clients"] for r in rounds) >= 4


def reference_reason(vec, bound=MAGNITUDE_BOUND):
    """check_values' answer, computed the slow, obvious way."""
    bad = int(np.count_nonzero(~np.isfinite(vec)))
    if bad:
        return f"{bad} non-finite value(s) (NaN or ±Inf)"
    top = float(np.abs(vec).max()) if vec.size else 0.0
    return f"|value| up to {top:.3g} exceeds the bound {bound:.3g}" if top > bound else None


@pytest.mark.parametrize(
    "values",
    [
        [1e20, -3e25, 1.0],  # finite and within the bound, though their squares overflow float32
        [MAGNITUDE_BOUND * 0.99, -MAGNITUDE_BOUND * 0.99],
        [np.nan, 0.0],
        [np.inf, -np.inf, np.nan, 2.0],
        [0.0, -MAGNITUDE_BOUND * 2],
        [3e38, 3e38],  # float32's largest finite values
        [],
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_check_values_decides_exactly_past_the_fast_path(values, dtype):
    with np.errstate(over="ignore"):
        vec = np.array(values, dtype=dtype)
    assert check_values(vec) == reference_reason(vec)
    assert check_values(vec, bound=1e3) == reference_reason(vec, bound=1e3)


def test_check_values_bound_is_a_parameter():
    assert check_values(np.array([1e20, 0.0]), bound=1e10) == "|value| up to 1e+20 exceeds the bound 1e+10"
    assert check_values(np.array([1e20, 0.0]), bound=1e21) is None
