"""Pre-aggregation (``pre-aggregation`` run key, ``pre_aggregation=`` of the plugin classes): NNM,
bucketing, ARC and static clipping, checked by hand, against ByzFL 0.0.11's pre-aggregators on
identical inputs, at hostile scales, and inside the strategies, the adversary's preview and the
plugin classes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fedrobust.aggregators.coordinate import coordinate_median
from fedrobust.aggregators.preaggregation import (
    ARC,
    NNM,
    Bucketing,
    Clipping,
    PreAggregation,
    adaptive_clipping,
    arc_count,
    bucketing,
    clip_rows,
    nearest_neighbour_mixing,
)
from fedrobust.config import ConfigError, RunConfig
from fedrobust.core.rng import stream_generator
from fedrobust.plugin import legacy
from fedrobust.run.inprocess import run_inprocess
from fedrobust.strategies import STRATEGIES
from fedrobust.strategies.adversary import _preview
from fedrobust.strategies.memory import server_memory_estimate

from _byzfl import load_byzfl

BYZFL = load_byzfl()
HUGE = [1e20, 1e30, 3e38]


def rows(n=10, d=6, seed=0):
    return np.random.default_rng(seed).normal(0.0, 1.0, size=(n, d))


# ------------------------------------------------------------------------------------------ NNM
def test_nnm_by_hand():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0], [10.0, 10.0]])
    # f = 1: each row averages its 3 nearest (itself included)
    # row 0: 0, 1 (d=1), 2 (d=3) | row 1: 1, 0 (1), 2 (sqrt 10) | row 2: 2, 0 (3), 1 (sqrt 10)
    # row 3: itself, then 2 (sqrt 149) and 1 (sqrt 181)
    expected = np.array([[1 / 3, 1.0], [1 / 3, 1.0], [1 / 3, 1.0], [11 / 3, 13 / 3]])
    assert np.allclose(nearest_neighbour_mixing(x, 1).numpy(), expected, atol=1e-6)
    assert np.allclose(nearest_neighbour_mixing(x, 0).numpy(), np.tile(x.numpy().mean(0), (4, 1)))


@pytest.mark.parametrize("f", [0, 1, 3, 5])
def test_nnm_matches_byzfl(f):
    x = rows()
    theirs = BYZFL.pre.NNM(f=f)(x.copy())
    ours = nearest_neighbour_mixing(torch.from_numpy(x), f).numpy()
    assert np.allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_nnm_keeps_a_row_among_its_own_neighbours_with_duplicates():
    x = torch.tensor([[1.0], [1.0], [1.0], [5.0]])
    out = nearest_neighbour_mixing(x, f=2)  # 2 neighbours each: the 5-row keeps itself, then a 1
    assert out[3].item() == pytest.approx(3.0) and torch.allclose(out[:3], torch.ones(3, 1))


@pytest.mark.parametrize("magnitude", HUGE)
def test_nnm_hostile_rows_leave_the_honest_mixtures_as_at_a_small_scale(magnitude):
    honest = torch.from_numpy(rows(8, 5)).float() * 0.01
    bad = torch.full((2, 5), magnitude).float() * torch.tensor([[1.0], [-1.0]])
    out = nearest_neighbour_mixing(torch.cat([honest, bad]), f=2)
    small = nearest_neighbour_mixing(torch.cat([honest, torch.full((2, 5), 1e3) * torch.tensor([[1.0], [-1.0]])]), f=2)
    assert bool(torch.isfinite(out).all())
    assert torch.allclose(out[:8], small[:8], atol=1e-6)


def test_nnm_checks_f():
    with pytest.raises(ValueError, match="f"):
        nearest_neighbour_mixing(torch.zeros(3, 2), 3)


# ------------------------------------------------------------------------------------- bucketing
def test_bucketing_means_consecutive_rows_of_the_seeded_permutation():
    x = torch.arange(7, dtype=torch.float64)[:, None] * torch.tensor([[1.0, 10.0]], dtype=torch.float64)
    gen = stream_generator("bucketing", 3, 5)
    out = bucketing(x, 3, gen)
    order = torch.randperm(7, generator=stream_generator("bucketing", 3, 5))
    expected = [x[order[0:3]].mean(0), x[order[3:6]].mean(0), x[order[6:]].mean(0)]
    assert out.shape == (3, 2) and torch.allclose(out, torch.stack(expected))
    assert torch.equal(out, bucketing(x, 3, stream_generator("bucketing", 3, 5)))
    assert not torch.equal(out, bucketing(x, 3, stream_generator("bucketing", 3, 6)))


@pytest.mark.parametrize("n,s", [(10, 2), (10, 3), (7, 7), (5, 1)])
def test_bucketing_matches_byzfl_on_the_same_permutation(n, s, monkeypatch):
    x = rows(n)
    order = torch.randperm(n, generator=stream_generator("bucketing", 0, 1)).numpy()

    class Identity:  # ByzFL draws its own permutation: hand it ours, already applied
        @staticmethod
        def permutation(v):
            return v

    monkeypatch.setitem(BYZFL.pre.Bucketing.__call__.__globals__, "random_tool", lambda vectors: Identity)
    theirs = BYZFL.pre.Bucketing(s=s)(x[order].copy())
    ours = bucketing(torch.from_numpy(x), s, stream_generator("bucketing", 0, 1)).numpy()
    assert ours.shape == (math.ceil(n / s), x.shape[1])
    assert np.allclose(ours, theirs, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------- ARC and clipping
@pytest.mark.parametrize("n,f,k", [(10, 2, 3), (10, 0, 0), (17, 4, 6), (5, 2, 2), (4, 3, 1)])
def test_arc_count(n, f, k):
    assert arc_count(n, f) == k == int((2 * f / n) * (n - f))


@pytest.mark.parametrize("f", [0, 1, 2, 4])
def test_arc_matches_byzfl(f):
    x = rows(10) * np.arange(1, 11)[:, None]  # distinct norms
    theirs = BYZFL.pre.ARC(f=f)(x.copy())
    ours = adaptive_clipping(torch.from_numpy(x), f).numpy()
    assert np.allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_arc_by_hand():
    x = torch.tensor([[3.0, 4.0], [0.0, 1.0], [0.0, -2.0], [60.0, 80.0], [1.0, 0.0]])
    out = adaptive_clipping(x, 1)  # k = floor(2/5 * 4) = 1: the norm-100 row clipped to norm 5
    assert torch.allclose(out[3], torch.tensor([3.0, 4.0])) and torch.equal(out[[0, 1, 2, 4]], x[[0, 1, 2, 4]])


@pytest.mark.parametrize("c", [0.5, 2.0, 10.0])
def test_clipping_matches_byzfl(c):
    x = rows() * 2
    assert np.allclose(clip_rows(torch.from_numpy(x), c).numpy(), BYZFL.pre.Clipping(c=c)(x.copy()), rtol=1e-12)


@pytest.mark.parametrize("magnitude", HUGE)
def test_clipping_and_arc_bound_hostile_rows_in_their_direction(magnitude):
    honest = torch.from_numpy(rows(8, 4)).float() * 0.3  # norms below 2
    bad = torch.tensor([[magnitude, -magnitude, 0.0, magnitude]], dtype=torch.float32).repeat(2, 1)
    x = torch.cat([honest, bad])
    norms = honest.norm(dim=1)
    # ARC with f = 2 of 10 clips k = 3 rows (the two bad, the largest honest) to the 7th smallest norm
    arc_bound = float(norms.sort().values[6])
    for out, bound in ((clip_rows(x, 2.0), 2.0), (adaptive_clipping(x, 2), arc_bound)):
        assert bool(torch.isfinite(out).all())
        assert out[8:].double().norm(dim=1).numpy() == pytest.approx([bound, bound], rel=1e-5)
        assert torch.allclose(out[8] / out[8].norm(), torch.tensor([1.0, -1.0, 0.0, 1.0]) / math.sqrt(3), atol=1e-6)
    assert torch.equal(clip_rows(x, 2.0)[:8], honest)
    kept = norms.argsort()[:7]
    assert torch.equal(adaptive_clipping(x, 2)[kept], honest[kept])


@pytest.mark.parametrize("magnitude", [1.0, 1e30, 3e38])
@pytest.mark.parametrize("n, s", [(10, 2), (10, 3), (7, 7)])
def test_bucket_means_equal_the_float64_reference_even_for_huge_rows(n, s, magnitude):
    x = torch.from_numpy(rows(n, 40, seed=n + s)).float()
    x[:3] = torch.sign(x[:3]) * magnitude  # 3e38 + 3e38 would overflow a float32 sum
    order = torch.randperm(n, generator=stream_generator("bucketing", 0, 1))
    want = torch.stack([x[order[i : i + s]].double().mean(dim=0) for i in range(0, n, s)]).float()
    got = bucketing(x, s, stream_generator("bucketing", 0, 1))
    assert bool(torch.isfinite(got).all())
    # float32 sums: an error of a few ulps of the largest row (a bucket of +-huge rows cancels)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6 * magnitude)


@pytest.mark.parametrize("magnitude", [1.0, 3e38])  # 3e38: the float64 path of the tiny factors
@pytest.mark.parametrize("clip", [lambda x, **kw: clip_rows(x, 2.0, **kw), lambda x, **kw: adaptive_clipping(x, 2, **kw)],
                         ids=["clipping", "arc"])
def test_in_place_clipping_overwrites_its_input_with_the_same_values(clip, magnitude):
    x = torch.cat([torch.from_numpy(rows(8, 5)).float() * 3, torch.full((2, 5), magnitude)])
    before = x.clone()
    copied = clip(x)
    assert torch.equal(x, before)  # the default leaves the caller's matrix alone
    same = clip(x, inplace=True)
    assert same is x and torch.equal(x, copied) and not torch.equal(x, before)
    small = torch.from_numpy(rows(4, 3)).float() * 0.1  # nothing to clip
    assert clip_rows(small, 2.0, inplace=True) is small


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("magnitude", [1.0, 3e38])  # 3e38: the blocks' float64 path
def test_nnm_in_place_mixes_block_by_block_into_its_input(dtype, magnitude):
    # 300,001 columns of 10 rows: three column blocks, the last a short one
    x = torch.randn(10, 300_001, generator=torch.Generator().manual_seed(3), dtype=dtype)
    x[:2] = torch.sign(x[:2]) * magnitude
    out = nearest_neighbour_mixing(x, 2)
    mixed = x.clone()
    assert nearest_neighbour_mixing(mixed, 2, inplace=True) is mixed
    assert bool(torch.isfinite(mixed).all()) and not torch.equal(mixed, x)
    torch.testing.assert_close(mixed, out, rtol=1e-6, atol=1e-6 * magnitude)  # float rounding apart


def test_a_pipeline_overwrites_only_rows_it_owns():
    pre = PreAggregation([Clipping(c=1.0), NNM(f=1), Clipping(c=0.5)])
    x = torch.from_numpy(rows(6, 4)).float() * 3
    before = x.clone()
    out = pre(x, 1)
    assert torch.equal(x, before)  # not owned: the first clipping copies, the second works on NNM's output
    owned = x.clone()
    assert torch.equal(pre(owned, 1, owned=True), out) and not torch.equal(owned, before)
    alone = PreAggregation([Clipping(c=1.0)])
    assert alone(x, 1) is not x and alone(x, 1, owned=True) is x


# --------------------------------------------------------------------------------- the run key
def test_parse_steps_parameters_and_spec():
    pre = PreAggregation.parse("bucketing:s=3,seed=4, nnm , clipping:c=1.5,arc:f=1", byzantine_fraction=0.2,
                               clients_per_round=10, seed=9)
    assert pre.steps == (Bucketing(s=3, seed=4), NNM(f=-1, byzantine_fraction=0.2, clients_per_round=10),
                         Clipping(c=1.5), ARC(f=1, byzantine_fraction=0.2, clients_per_round=10))
    assert pre.spec() == "bucketing:s=3,seed=4,nnm:f=-1,clipping:c=1.5,arc:f=1"
    again = PreAggregation.parse(pre.spec(), byzantine_fraction=0.2, clients_per_round=10)
    assert again.steps == pre.steps
    assert PreAggregation.parse("bucketing", seed=9).steps == (Bucketing(s=2, seed=9),)


@pytest.mark.parametrize("text,match", [
    ("nnm:f", "expected key=value"),
    ("s=2", "before any step"),
    ("median", "unknown step 'median'"),
    ("bucketing:s=0", "s must"),
    ("clipping:c=-1", "c must be a finite number > 0"),
    ("arc:f=-2", "f must"),
])
def test_parse_errors(text, match):
    with pytest.raises(ValueError, match=match):
        PreAggregation.parse(text, byzantine_fraction=0.2)


def test_a_step_needing_f_without_a_byzantine_fraction_is_refused():
    with pytest.raises(ValueError, match="nnm needs f"):
        PreAggregation.parse("nnm")
    assert PreAggregation.parse("nnm:f=2").steps[0].f_for(10) == 2


def test_f_follows_the_run_and_is_capped_below_n():
    step = NNM(byzantine_fraction=0.3, clients_per_round=10)
    assert step.f_for(10) == 3 and step.f_for(3) == 2


@pytest.mark.parametrize("strategy,extra,match", [
    ("signsgd-mv", {}, "signsgd-mv takes none"),
    ("c-rsa", {}, "c-rsa takes none"),
    ("fl-bgmd", {}, "fl-bgmd takes none"),
    ("bgmd", {"memory": "rows"}, "memory = rows"),
    ("fedavg", {"weighted": True}, "weighted = true"),
    ("norm-threshold", {"norm_option": 1}, "norm-option = 1"),
    ("gmd", {"pre_aggregation": "nnm:x=1"}, "takes no parameter 'x'"),
])
def test_config_refusals(strategy, extra, match):
    with pytest.raises(ConfigError, match=match):
        RunConfig(strategy=strategy, **{"pre_aggregation": "nnm", **extra})


@pytest.mark.parametrize("strategy", ["mean-sgd", "gmd", "bgmd", "qbgmd", "cmd", "trimmed-mean", "krum",
                                      "centered-clipping", "fedavg", "norm-threshold", "norm-threshold-ef", "fed-cure"])
def test_strategies_that_take_pre_aggregation(strategy):
    RunConfig(strategy=strategy, pre_aggregation="bucketing,nnm")
    assert not STRATEGIES[strategy].no_pre_aggregation


def _cfg(**kw):
    base = dict(strategy="cmd", dataset="digits", model="logistic", num_clients=10, clients_per_round=10, rounds=3,
                lr=0.5, attack="bit-flip", byzantine_fraction=0.2, device="cpu", seed=0)
    return RunConfig(**{**base, **kw})


def test_a_run_with_pre_aggregation_steps_on_the_mixed_rows():
    seen = []
    res = run_inprocess(_cfg(pre_aggregation="bucketing:s=3,nnm"), after_round=lambda s, r: seen.append(s.x.clone()))
    assert all(r["pre_aggregated_rows"] == 4 for r in res["rounds"])  # ceil(10 / 3)
    assert all(bool(torch.isfinite(x).all()) for x in seen)
    plain = []
    run_inprocess(_cfg(), after_round=lambda s, r: plain.append(s.x.clone()))
    assert not torch.equal(seen[-1], plain[-1])  # the steps changed what the rule saw
    again = []
    run_inprocess(_cfg(pre_aggregation="bucketing:s=3,nnm"), after_round=lambda s, r: again.append(s.x.clone()))
    assert torch.equal(seen[-1], again[-1])


def test_the_adversarys_preview_sees_the_pre_aggregated_rows():
    cfg = _cfg(pre_aggregation="nnm", attack="alie")
    strategy = STRATEGIES["cmd"](cfg, torch.zeros(6), [(6,)])
    strategy.server_round = 2
    x = torch.from_numpy(rows(10)).float()
    preview = _preview(strategy, list(range(10)), [{} for _ in range(10)])(x)
    assert torch.allclose(preview, coordinate_median(nearest_neighbour_mixing(x, 2)))
    assert not torch.allclose(preview, coordinate_median(x))


def test_memory_estimate_counts_the_pre_aggregated_rows():
    plain = server_memory_estimate(STRATEGIES["gmd"], RunConfig(strategy="gmd"), d=1000)
    mixed = server_memory_estimate(STRATEGIES["gmd"], RunConfig(strategy="gmd", pre_aggregation="nnm"), d=1000)
    assert mixed["total"] - plain["total"] == 4 * 10 * 1000


# --------------------------------------------------------------------------------- the plugin
def _deltas(scale=1e20):
    rng = np.random.default_rng(0)
    honest = [rng.normal(0.1, 0.01, 6).astype(np.float32) for _ in range(8)]
    return honest + [np.full(6, -scale, np.float32), np.full(6, scale, np.float32)]


def test_plugin_classes_take_pre_aggregation():
    from fedrobust.plugin.weights import WeightsAggregator

    x = [np.zeros(6, np.float32)]
    gmd = legacy.FedGMD(pre_aggregation="nnm:f=2")
    assert "pre_aggregation='nnm:f=2'" in repr(gmd)
    out = gmd.aggregator.aggregate(1, x, [[d] for d in _deltas()])
    assert out.metrics["pre_aggregated_rows"] == 10 and np.allclose(out.arrays[0], 0.1, atol=0.02)
    krum = WeightsAggregator(legacy.FedKrum.rule_class(byzantine_fraction=0.2), pre_aggregation="bucketing,nnm")
    assert krum.pre_aggregation.steps[1].byzantine_fraction == 0.2
    assert np.isfinite(krum.aggregate(1, x, [[d] for d in _deltas()]).arrays[0]).all()
    steps = legacy.FedCMD(pre_aggregation=[NNM(f=2), Clipping(c=1.0)])
    assert len(steps.aggregator.pre_aggregation) == 2
    with pytest.raises(ValueError, match="nnm needs f"):
        legacy.FedGMD(pre_aggregation="nnm")
    with pytest.raises(TypeError, match="PreAggregator"):
        legacy.FedGMD(pre_aggregation=["nnm"])
