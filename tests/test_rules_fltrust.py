"""FLTrust (Cao, Fang, Liu and Gong, 2021): the formula by hand, trust and rescaling, scale safety,
the server's root set (held out of every partition), the strategy and the plugin classes.

No peer library implements FLTrust (ByzFL 0.0.11 and Flower have none): the reference is the
paper's formula written out in numpy below.
"""

import numpy as np
import pytest
import torch
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays

from fedrobust.aggregators.fltrust import fltrust, trust_scores
from fedrobust.aggregators.rules import RULES
from fedrobust.aggregators.rules_fltrust import FLTrustRule
from fedrobust.config import ConfigError, RunConfig
from fedrobust.core.rng import stream_generator
from fedrobust.data import partition
from fedrobust.data.holdout import holdout_split
from fedrobust.models import flat_params, set_flat_params
from fedrobust.plugin import legacy, message
from fedrobust.run import build
from fedrobust.run.app import make_strategy
from fedrobust.run.inprocess import run_inprocess
from fedrobust.strategies import STRATEGIES, FLTrust


def by_hand(x, g0):
    """The paper's aggregate, in float64 numpy: sum_i ReLU(cos_i) (|g0|/|x_i|) x_i / sum_i ReLU(cos_i)."""
    x, g0 = np.asarray(x, np.float64), np.asarray(g0, np.float64)
    out, total = np.zeros_like(g0), 0.0
    for row in x:
        norm = np.sqrt((row**2).sum())
        if norm == 0 or not g0.any():
            continue
        ts = max(0.0, float(row @ g0) / (norm * np.sqrt((g0**2).sum())))
        out += ts * row * np.sqrt((g0**2).sum()) / norm
        total += ts
    return out / total if total else out


X = torch.tensor([[2.0, 0.0, 1.0], [30.0, 40.0, 0.0], [-5.0, 1.0, 0.0], [0.0, 3.0, 3.0], [1.0, 1.0, 1.0]])
G0 = torch.tensor([1.0, 1.0, 0.0])


# --------------------------------------------------------------------------------------- the formula
def test_the_aggregate_is_the_papers_formula_by_hand():
    out = fltrust(X, G0)
    # Cosines by hand: (2/sqrt5/sqrt2, 70/50/sqrt2, -4/sqrt26/sqrt2 -> 0, 3/sqrt18/sqrt2, 2/sqrt3/sqrt2).
    want_trust = [2 / np.sqrt(10), 1.4 / np.sqrt(2), 0.0, 0.5, 2 / np.sqrt(6)]
    np.testing.assert_allclose(out.trust.numpy(), want_trust, rtol=1e-7)  # float32 norms: one rounding
    np.testing.assert_allclose(out.aggregate.numpy(), by_hand(X, G0), rtol=1e-6)
    np.testing.assert_allclose(fltrust(X.double(), G0.double()).trust.numpy(), want_trust, rtol=1e-12)
    step = FLTrustRule()(X.clone(), None, 1, reference=G0)
    assert torch.equal(step.update, out.aggregate) and step.scale == 1.0
    assert step.metrics["trusted_clients"] == 4
    assert step.metrics["mean_trust"] == pytest.approx(sum(want_trust) / 5)
    assert step.metrics["server_update_norm"] == pytest.approx(np.sqrt(2))


def test_float64_rows_give_a_float64_aggregate():
    out = fltrust(X.double(), G0.double())
    assert out.aggregate.dtype == torch.float64
    np.testing.assert_allclose(out.aggregate.numpy(), by_hand(X, G0), rtol=1e-12)


def test_clients_against_the_server_get_no_weight_whatever_their_size():
    base = fltrust(X, G0).aggregate
    for scale in (1.0, 1e3, 1e20):
        against = torch.cat([X, -scale * G0[None], torch.tensor([[-scale, 0.0, 5.0]])])
        out = fltrust(against, G0)
        assert out.trust[-2:].tolist() == [0.0, 0.0]
        torch.testing.assert_close(out.aggregate, base, rtol=1e-6, atol=0)


def test_every_trusted_row_is_rescaled_to_the_server_norm():
    one = torch.tensor([[3.0, 4.0, 0.0]])
    # A single trusted row comes back with the server update's norm, in its own direction.
    torch.testing.assert_close(fltrust(one, G0).aggregate, torch.tensor([0.6, 0.8, 0.0]) * np.sqrt(2))
    # A row's length does not matter, only its direction.
    longer = X.clone()
    longer[1] *= 1e4
    torch.testing.assert_close(fltrust(longer, G0).aggregate, fltrust(X, G0).aggregate)
    # The aggregate scales with g0 and never exceeds its norm.
    torch.testing.assert_close(fltrust(X, 5 * G0).aggregate, 5 * fltrust(X, G0).aggregate)
    assert float(fltrust(X, G0).aggregate.norm()) <= float(G0.norm()) + 1e-6


def test_no_trusted_client_means_no_step_and_says_so():
    against = -X[[1, 4]]
    step = FLTrustRule()(against, None, 3, scale=0.1, reference=G0)
    assert torch.equal(step.update, torch.zeros(3)) and step.metrics["trusted_clients"] == 0
    assert step.metrics["mean_trust"] == 0.0
    # A zero reference and zero rows have cosine 0: zero trust, no NaN.
    for rows, ref in ((X, torch.zeros(3)), (torch.zeros(4, 3), G0)):
        out = fltrust(rows, ref)
        assert torch.equal(out.aggregate, torch.zeros(3)) and torch.equal(out.trust, torch.zeros(rows.shape[0], dtype=torch.float64))
    mixed = fltrust(torch.cat([torch.zeros(1, 3), X]), G0)
    assert mixed.trust[0] == 0 and torch.allclose(mixed.aggregate, fltrust(X, G0).aggregate)


@pytest.mark.parametrize("big", [1e20, 1e30, 3e38])
def test_huge_rows_neither_crash_nor_overflow_nor_move_it(big):
    g = torch.Generator().manual_seed(0)
    d = 50
    g0 = torch.ones(d)
    honest = 1.0 + 0.3 * torch.randn(8, d, generator=g)
    reference = fltrust(honest, g0).aggregate
    # Attackers against g0, at hostile magnitudes: no trust, no change.
    against = torch.cat([honest, torch.full((2, d), -big), torch.cat([torch.full((1, d // 2), big), torch.full((1, d // 2), -big)], 1)])
    out = fltrust(against, g0)
    assert torch.isfinite(out.aggregate).all() and out.trust[8:].tolist() == [0.0, 0.0, 0.0]
    torch.testing.assert_close(out.aggregate, reference, rtol=1e-5, atol=1e-6)
    # An honest row inflated to a hostile magnitude counts exactly as much as before (its direction).
    inflated = honest.clone()
    inflated[0] *= big / float(inflated[0].abs().max())
    out = fltrust(inflated, g0)
    assert torch.isfinite(out.aggregate).all()
    torch.testing.assert_close(out.aggregate, reference, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(trust_scores(inflated, g0), trust_scores(honest, g0), rtol=1e-6, atol=0)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="reference must have length 3"):
        fltrust(X, torch.ones(2))
    with pytest.raises(ValueError, match="must be finite"):
        fltrust(X, torch.tensor([1.0, float("nan"), 0.0]))
    with pytest.raises(ValueError, match=r"shape \(n, d\)"):
        fltrust(X[0], G0)
    with pytest.raises(ValueError, match="needs the server's update g0"):
        FLTrustRule()(X, None, 1)
    with pytest.raises(TypeError, match="server_update_fn must be callable"):
        FLTrustRule(server_update_fn=3)
    with pytest.raises(ValueError, match="fltrust takes no parameter 'tau'"):
        RunConfig(strategy="fltrust", rule_params="tau=2")
    with pytest.raises(ConfigError, match="root-size must be >= 1"):
        RunConfig(strategy="fltrust", root_size=0)
    assert RULES["fltrust"] is FLTrustRule and STRATEGIES["fltrust"] is FLTrust


# ------------------------------------------------------------------------------------ the root set
def cfg_of(**keys):
    base = dict(strategy="fltrust", dataset="digits", model="logistic", num_clients=10, clients_per_round=10,
                rounds=3, attack="bit-flip", byzantine_fraction=0.2, device="cpu")
    return RunConfig(**{**base, **keys})


def test_the_root_set_is_held_out_of_every_partition_and_comes_from_the_training_split():
    cfg = cfg_of()
    splits = build.load_splits(cfg)
    root = build.root_indices(cfg)
    parts = [build.client_indices(cfg, p) for p in range(cfg.num_clients)]
    assert len(root) == cfg.root_size == 100 and len(np.unique(root)) == 100
    assert all(np.intersect1d(root, p).size == 0 for p in parts)
    # Together they are the whole training split (iid uses every example), each index once.
    everything = np.sort(np.concatenate([root, *parts]))
    np.testing.assert_array_equal(everything, np.arange(splits.num_train))
    # The root examples are training rows, and no client holds a copy of one.
    x_root, y_root = build.root_data(cfg)
    np.testing.assert_array_equal(x_root.numpy(), splits.x_train[root])
    np.testing.assert_array_equal(y_root.numpy(), splits.y_train[root])
    clients_x = np.concatenate([build.client_data(cfg, p)[0].numpy() for p in range(cfg.num_clients)])
    assert clients_x.shape[0] == splits.num_train - 100
    # The test split is not touched: it is what the dataset loads, and the evaluation uses all of it.
    fresh = build.load_dataset(cfg.dataset, seed=cfg.seed)
    np.testing.assert_array_equal(splits.x_test, fresh.x_test)


def test_the_server_and_every_client_carve_the_same_root_set_in_every_run():
    cfg = cfg_of()
    strategy = make_strategy(cfg, warn=False)
    x_root, _ = build.root_data(cfg)
    assert torch.equal(strategy.server_update_fn.client.x.cpu(), x_root)  # the server's model trains on these
    first = build.root_indices(cfg).copy()
    build._root_set.cache_clear()
    build._partitions.cache_clear()  # a fresh process draws alike
    np.testing.assert_array_equal(build.root_indices(cfg), first)
    np.testing.assert_array_equal(first, holdout_split(build.load_splits(cfg).num_train, 100, 0, "root-set").held_out)
    assert not np.array_equal(build.root_indices(cfg.replace(seed=1)), first)
    assert len(build.root_indices(cfg.replace(root_size=7))) == 7


def test_other_strategies_partition_the_whole_training_split_as_before():
    for name in ("mean-sgd", "krum"):
        cfg = cfg_of(strategy=name, root_size=300)  # root-size is fltrust's alone
        labels = build.load_splits(cfg).y_train
        want = partition(labels, cfg.num_clients, partitioner="iid", seed=cfg.seed)
        assert build.root_size(cfg) == 0 and build.root_indices(cfg).size == 0
        for p in range(cfg.num_clients):
            np.testing.assert_array_equal(build.client_indices(cfg, p), want[p])


def test_a_root_set_above_half_the_training_split_is_a_config_error():
    cfg = cfg_of(dataset="breast-cancer", num_clients=5, clients_per_round=5, root_size=400)
    with pytest.raises(ConfigError, match="root-size=400 is more than 0.5 of the 455 training examples"):
        make_strategy(cfg, warn=False)
    with pytest.raises(ConfigError, match="root-size=400"):
        build.client_indices(cfg, 0)


# ---------------------------------------------------------------------------------- the strategy
def test_the_server_gradient_is_the_gradient_clients_computation_on_a_seeded_root_minibatch():
    cfg = cfg_of(batch_size=16, weight_decay=0.01)
    strategy = make_strategy(cfg, warn=False)
    x = strategy.x.clone() + 0.01
    g0 = strategy.server_update_fn(x, 2)
    x_root, y_root = build.root_data(cfg)
    idx = torch.randperm(len(x_root), generator=stream_generator("root-minibatch", cfg.seed, 2))[:16]
    model = build.build_model(cfg)
    set_flat_params(model, x)
    model.loss(model(x_root[idx]), y_root[idx]).backward()
    want = torch.cat([p.grad.reshape(-1) for p in model.parameters()]) + 0.01 * x
    torch.testing.assert_close(g0, want)
    assert torch.equal(strategy.server_update_fn(x, 2), g0) and not torch.equal(strategy.server_update_fn(x, 3), g0)
    assert flat_params(model).numel() == g0.numel()


def test_a_bare_strategy_needs_a_server_update_and_steps_with_it():
    cfg = RunConfig(strategy="fltrust", device="cpu", lr=0.5)
    with pytest.raises(ConfigError, match="fltrust needs server_update_fn"):
        FLTrust(cfg, torch.zeros(3), [(3,)])
    calls = []
    strategy = FLTrust(cfg, torch.zeros(3), [(3,)], server_update_fn=lambda x, r: calls.append(r) or G0.clone())
    strategy.server_round = 4
    preview = strategy.aggregate_preview(X, list(range(5)), [{}] * 5)
    metrics = strategy.step(X.clone(), torch.ones(5, dtype=torch.float64))
    torch.testing.assert_close(preview, torch.from_numpy(by_hand(X, G0)).float())
    torch.testing.assert_close(strategy.x, -0.5 * preview)
    assert calls == [4]  # one server gradient per round and model, shared by the preview and the step
    assert metrics["trusted_clients"] == 4 and metrics["server_update_finite"] is True
    strategy.server_update_fn = lambda x, r: torch.full((3,), float("nan"))
    strategy.server_round = 5
    x_before = strategy.x.clone()
    metrics = strategy.step(X.clone(), torch.ones(5, dtype=torch.float64))
    assert torch.equal(strategy.x, x_before) and metrics["trusted_clients"] == 0 and metrics["server_update_finite"] is False


def test_a_short_attacked_run_ends_finite_and_distrusts_the_bit_flippers():
    seen = []
    results = run_inprocess(cfg_of(), after_round=lambda s, r: seen.append(s.x.clone()), warn=False)
    assert len(seen) == 3 and all(torch.isfinite(x).all() for x in seen)
    rounds = results["rounds"]
    assert all(r["trusted_clients"] <= 10 - len(r["byzantine_clients"]) for r in rounds)
    assert all(0 < r["mean_trust"] <= 1 and r["server_update_finite"] for r in rounds)
    assert rounds[-1]["accuracy"] > 0.5


# -------------------------------------------------------------------------------------- the plugins
def test_the_plugin_needs_a_server_update_fn():
    for cls in (legacy.FedFLTrust, message.FedFLTrust):
        with pytest.raises(ValueError, match="FedFLTrust needs server_update_fn"):
            cls()


def test_the_legacy_plugin_weighs_the_deltas_by_trust_in_the_servers_update():
    x = [np.zeros((2, 2), np.float32), np.array([1.0, 2.0], np.float32), np.array(7, np.int64)]
    server_delta = [np.full((2, 2), 0.1, np.float32), np.array([0.1, -0.1], np.float32), np.array(0, np.int64)]
    seen = []

    def server_update_fn(global_arrays, server_round):
        seen.append((server_round, [a.copy() for a in global_arrays]))
        return server_delta

    strategy = legacy.FedFLTrust(server_update_fn=server_update_fn, fraction_fit=1.0, min_fit_clients=2)
    strategy.global_arrays = x  # what configure_fit remembers of the round's model
    rng = np.random.default_rng(0)
    deltas = [[rng.normal(0.1, 0.05, a.shape).astype(np.float32) if a.dtype == np.float32 else a * 0 for a in x]
              for _ in range(4)]
    deltas += [[-100 * d for d in deltas[0]]]
    replies = [[a + d for a, d in zip(x, delta)] for delta in deltas]
    results = [(None, FitRes(Status(Code.OK, ""), ndarrays_to_parameters(r), 10, {})) for r in replies]
    params, metrics = strategy.aggregate_fit(3, results, [])
    new = parameters_to_ndarrays(params)
    rows = np.stack([np.concatenate([d[0].ravel(), d[1].ravel()]) for d in deltas])
    g0 = np.concatenate([server_delta[0].ravel(), server_delta[1].ravel()])
    got = np.concatenate([(new[0] - x[0]).ravel(), (new[1] - x[1]).ravel()])
    np.testing.assert_allclose(got, by_hand(rows, g0), rtol=1e-5, atol=1e-7)
    assert new[2] == 7 and metrics["trusted_clients"] == 4 and metrics["accepted_clients"] == 5
    assert seen[0][0] == 3 and all(np.array_equal(a, b) for a, b in zip(seen[0][1], x))
    wrong = legacy.FedFLTrust(server_update_fn=lambda a, r: [np.zeros(3)] * 3)
    with pytest.raises(ValueError, match="server_update_fn's array 0 has shape"):
        wrong.aggregator.aggregate(1, x, [parameters_to_ndarrays(res.parameters) for _, res in results])
