"""The colluding adversary in the server loop (fedrobust.strategies.adversary): omniscient attacks
see this round's honest replies, write the Byzantine ones in each protocol's wire format, and are
recorded; through both engines and both Flower APIs."""

import numpy as np
import pytest
import torch
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays

from fedrobust.attacks import ATTACKS, OmniscientAttack, byzantine_clients, get_attack, register_attack
from fedrobust.compression import payload_from_ndarrays
from fedrobust.config import RunConfig
from fedrobust.core.results import RoundRecord
from fedrobust.run.app import make_strategy
from fedrobust.run.inprocess import run_inprocess
from fedrobust.strategies import STRATEGIES, VectorStrategy
from fedrobust.strategies.norm_threshold import NORM_KEY
from fedrobust.strategies.adversary import craft_round

N = 10


def _cfg(strategy="mean-sgd", **keys):
    base = dict(strategy=strategy, dataset="breast-cancer", model="logistic", num_clients=N, clients_per_round=N,
                rounds=2, lr=0.1, batch_size=16, device="cpu", attack="ipm", attack_params="epsilon=0.5",
                byzantine_fraction=0.2, client_threads=0)
    return RunConfig(**{**base, **keys})


def _reply(strategy, row, partition, server_round=1, metrics=None):
    """An honest client's reply in the strategy's wire format whose server row is (the wire image of) ``row``."""
    metrics = {"partition_id": partition, **(metrics or {})}
    arrays, metrics = strategy.encode_reply(torch.as_tensor(row, dtype=torch.float32), metrics, server_round, partition)
    return None, FitRes(Status(Code.OK, ""), ndarrays_to_parameters(arrays), 10, metrics)


def _row(strategy, res, server_round=1):
    """The row the server reads from a reply, or the reason it rejects it."""
    out = np.empty(strategy.reply_length(server_round), np.float32)
    reason = strategy._check_reply(res, parameters_to_ndarrays(res.parameters), out)
    return out if reason is None else reason


def _round(strategy, rows, server_round=1):
    """craft_round over replies from every partition (row i from partition i); (results, record, byzantine ids)."""
    strategy.server_round = server_round
    results = [_reply(strategy, rows[p], p, server_round) for p in range(len(rows))]
    record = RoundRecord(round=server_round)
    return craft_round(strategy, results, server_round, record), record, sorted(byzantine_clients(strategy.cfg, server_round))


def _honest_rows(strategy, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    rows = torch.randn(N, d, generator=g) * 0.1 + 0.05
    return torch.sign(rows) if strategy.name in ("c-rsa", "rsa") else rows


# ------------------------------------------------------------------------------ the gradient protocol
def test_byzantine_replies_become_the_attack_of_the_honest_replies_and_the_rest_is_untouched():
    strategy = make_strategy(_cfg())
    d = strategy.reply_length(1)
    rows = _honest_rows(strategy, d)
    results, record, byz = _round(strategy, rows)
    assert byz == [6, 8] and record.extra["crafted_clients"] == byz
    honest = [p for p in range(N) if p not in byz]
    want = -0.5 * rows[honest].to(torch.float64).mean(0)
    for p in range(N):
        got = torch.from_numpy(_row(strategy, results[p][1]))
        if p in byz:
            assert torch.allclose(got.double(), want, atol=1e-6)
            assert results[p][1].num_examples == 10 and results[p][1].metrics["partition_id"] == p
        else:
            assert torch.equal(got, rows[p])
    assert record.extra["attack_distance"] == pytest.approx(float((want - rows[honest].double().mean(0)).norm()), rel=1e-5)


def test_the_adversary_sees_only_the_replies_of_the_round():
    """Partial participation: what is crafted depends on the honest replies given, and on nothing else."""
    strategy = make_strategy(_cfg())
    rows = _honest_rows(strategy, strategy.reply_length(1))
    full, _, byz = _round(strategy, rows)
    fewer = craft_round(strategy, [_reply(strategy, rows[p], p) for p in range(2, N)], 1, RoundRecord(round=1))
    want = -0.5 * rows[[p for p in range(2, N) if p not in byz]].double().mean(0)  # 0 and 1 not sampled
    crafted = {res.metrics["partition_id"]: torch.from_numpy(_row(strategy, res)).double() for _, res in fewer}
    assert all(torch.allclose(crafted[p], want, atol=1e-6) for p in byz)
    assert not torch.allclose(torch.from_numpy(_row(strategy, full[6][1])).double(), want, atol=1e-4)


def test_without_a_byzantine_or_an_honest_reply_nothing_is_crafted():
    strategy = make_strategy(_cfg())
    rows = _honest_rows(strategy, strategy.reply_length(1))
    only_honest = [_reply(strategy, rows[p], p) for p in (0, 1, 2)]
    record = RoundRecord(round=1)
    assert craft_round(strategy, only_honest, 1, record) is only_honest and "crafted_clients" not in record.extra
    only_byz = [_reply(strategy, rows[p], p) for p in (6, 8)]
    assert craft_round(strategy, only_byz, 1, record) is only_byz and record.extra["attack_distance"] is None


def test_client_local_attacks_leave_the_server_loop_alone():
    strategy = make_strategy(_cfg(attack="bit-flip", attack_params=""))
    rows = _honest_rows(strategy, strategy.reply_length(1))
    results = [_reply(strategy, rows[p], p) for p in range(N)]
    assert craft_round(strategy, results, 1, RoundRecord(round=1)) is results


def test_malformed_honest_replies_are_not_seen_and_crafted_replies_still_pass_validation():
    strategy = make_strategy(_cfg())
    rows = _honest_rows(strategy, strategy.reply_length(1))
    bad = rows.clone()
    bad[0, 0] = float("nan")
    results = [_reply(strategy, bad[p], p) for p in range(N)]
    out = craft_round(strategy, results, 1, RoundRecord(round=1))
    honest = [p for p in range(1, N) if p not in (6, 8)]  # partition 0's NaN reply is not among them
    assert torch.allclose(torch.from_numpy(_row(strategy, out[6][1])).double(), -0.5 * rows[honest].double().mean(0),
                          atol=1e-6)


def test_huge_crafted_values_are_rejected_by_the_validator_not_a_crash():
    strategy = make_strategy(_cfg(attack_params="epsilon=1e35"))
    rows = _honest_rows(strategy, strategy.reply_length(1)) * 100
    x0 = strategy.x.clone()
    results = [_reply(strategy, rows[p], p) for p in range(N)]
    strategy.aggregate_fit(1, results, [])
    record = strategy._open[1][1]
    assert record.rejected_clients == 2 and {p for p, _ in record.extra["rejections"]} == {6, 8}
    assert torch.isfinite(strategy.x).all() and not torch.equal(strategy.x, x0)


def test_an_attack_that_fails_is_recorded_and_the_round_goes_on():
    @register_attack("doctest-broken")
    class Broken(OmniscientAttack):
        def _craft(self, honest, view):
            raise RuntimeError("no")

    try:
        strategy = make_strategy(_cfg(attack="doctest-broken", attack_params=""))
        rows = _honest_rows(strategy, strategy.reply_length(1))
        record = RoundRecord(round=1)
        results = [_reply(strategy, rows[p], p) for p in range(N)]
        assert craft_round(strategy, results, 1, record) is results
        assert record.extra["attack_error"] == "RuntimeError: no" and record.extra["attack_distance"] is None
    finally:
        ATTACKS.pop("doctest-broken")


# ------------------------------------------------------------------------------ every wire format
def _wire_image(strategy, row):
    """What the server reads when a client sends ``row`` in this protocol (compression, signs)."""
    return torch.from_numpy(_row(strategy, _reply(strategy, row, 0)[1]))


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_protocol_gets_crafted_replies_in_its_own_wire_format(name):
    keys = {"norm_option": 1} if name == "norm-threshold" else {}
    strategy = make_strategy(_cfg(name, coord_ratio=0.5, **keys))
    d = strategy.reply_length(1)
    rows = _honest_rows(strategy, d)
    results = [_reply(strategy, rows[p], p, metrics={NORM_KEY: 1.0}) for p in range(N)]
    seen = torch.stack([torch.from_numpy(_row(strategy, res)) for _, res in results])  # the honest rows as read
    out = craft_round(strategy, results, 1, record := RoundRecord(round=1))
    honest = [p for p in range(N) if p not in (6, 8)]
    crafted = -0.5 * seen[honest].double().mean(0)
    for p in (6, 8):
        res = out[p][1]
        assert type(res.parameters.tensors) is list and res.parameters.tensor_type == results[0][1].parameters.tensor_type
        assert [a.dtype for a in parameters_to_ndarrays(res.parameters)] == \
            [a.dtype for a in parameters_to_ndarrays(results[0][1].parameters)]
        got = _row(strategy, res)
        assert not isinstance(got, str), got  # the server accepts it
        assert torch.allclose(torch.from_numpy(got), _wire_image(strategy, crafted.float()), atol=1e-5)
        if name == "norm-threshold":
            assert res.metrics[NORM_KEY] == pytest.approx(float(crafted.norm()))
    if name in ("c-rsa", "rsa"):
        assert set(np.unique(_row(strategy, out[6][1]))) <= {-1.0, 0.0, 1.0}
    assert record.extra["crafted_clients"] == [6, 8]


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_previews_its_aggregate_without_moving(name):
    strategy = make_strategy(_cfg(name, coord_ratio=0.5))
    strategy.server_round = 1
    rows = _honest_rows(strategy, strategy.reply_length(1))
    before = {k: v.clone() for k, v in strategy.state_dict().items() if isinstance(v, torch.Tensor)}
    preview = strategy.aggregate_preview(rows, list(range(N)), [{} for _ in range(N)])
    assert preview.shape == (strategy.reply_length(1),) and torch.isfinite(preview).all()
    after = strategy.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())
    assert torch.allclose(strategy.aggregate_preview(rows, list(range(N)), [{}] * N), preview)


def test_the_preview_is_the_strategys_own_aggregate():
    rows = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 10.0], [3.0, 3.0], [100.0, 100.0]] * 2)
    for name, want in (("mean-sgd", rows.mean(0)), ("cmd", rows.median(0).values),
                       ("fedavg", rows.mean(0))):
        strategy = make_strategy(_cfg(name))
        strategy.x = torch.zeros(2)
        assert torch.allclose(strategy.aggregate_preview(rows, list(range(N)), [{}] * N), want, atol=1e-4), name


def test_an_adaptive_attack_against_a_strategy_without_a_preview_is_a_config_error():
    @register_attack("doctest-adaptive")
    class Adaptive(OmniscientAttack):
        needs_aggregate = True

        def _craft(self, honest, view):
            return view.aggregate(honest.repeat(2, 1)[: view.n])

    try:
        ok = _cfg("cmd", attack="doctest-adaptive", attack_params="")
        strategy = make_strategy(ok)
        rows = _honest_rows(strategy, strategy.reply_length(1))
        out, record, _ = _round(strategy, rows)
        assert record.extra["attack_distance"] is not None and "attack_error" not in record.extra
        no_preview = type("NoPreview", (STRATEGIES["mean-sgd"],), {"aggregate_preview": VectorStrategy.aggregate_preview})
        assert not no_preview.previews_aggregate() and STRATEGIES["mean-sgd"].previews_aggregate()
        assert "does not preview" in no_preview.adversary_problems(ok)[0]
    finally:
        ATTACKS.pop("doctest-adaptive")


# ------------------------------------------------------------------------------ runs
def test_an_omniscient_run_records_the_attack_and_each_rounds_crafted_replies():
    results = run_inprocess(_cfg("cmd", rounds=3))
    assert results["attack"]["kind"] == "omniscient" and results["attack"]["name"] == "ipm"
    assert results["attack"]["params"] == {"epsilon": 0.5}
    for r in results["rounds"]:
        assert r["crafted_clients"] == r["byzantine_clients"] == [6, 8]
        assert r["attack_distance"] > 0 and r["rejected_clients"] == 0 and r["num_clients"] == N


def test_omniscient_attacks_do_harm_a_naive_mean():
    clean = run_inprocess(_cfg("mean-sgd", rounds=5, lr=0.5, attack="none", attack_params="", byzantine_fraction=0))
    attacked = run_inprocess(_cfg("mean-sgd", rounds=5, lr=0.5, attack_params="epsilon=20"))
    assert attacked["rounds"][-1]["loss"] > clean["rounds"][-1]["loss"] + 0.1


def test_both_apis_of_the_inprocess_engine_give_the_same_attacked_run():
    cfg = _cfg("bgmd", rounds=2, clients_per_round=6)
    legacy = run_inprocess(cfg)
    message = run_inprocess(cfg.replace(api="message"))
    drop = lambda res: [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in res["rounds"]]
    assert drop(legacy) == drop(message)
    assert any(r["crafted_clients"] for r in legacy["rounds"])


@pytest.mark.slow
def test_flowers_engine_gives_the_inprocess_attacked_run():
    import fedrobust

    cfg = _cfg("krum", rounds=2, clients_per_round=6, num_clients=6, byzantine_fraction=0.34, attack_params="epsilon=100")
    ray = fedrobust.simulate(cfg)
    local = run_inprocess(cfg)
    drop = lambda res: [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in res["rounds"]]
    assert drop(ray) == drop(local)
    assert all(len(r["crafted_clients"]) == len(r["byzantine_clients"]) > 0 for r in ray["rounds"])
