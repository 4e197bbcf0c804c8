"""The selection rules: bulyan, meamed, mda, monna, caf, smea (fedrobust.aggregators.rules_selection).

Hand-computed cases, argument errors, cross-checks on identical float64 inputs against ByzFL 0.0.11
(``tests/_byzfl.py``; skipped without it) and Flower's ``aggregate_bulyan``, scale safety, float64
input, a plugin class with parameters and a short in-process run of each.

Conventions matched or documented (see docs/strategies.md, "## selection"):

- Bulyan: Flower's ``aggregate_bulyan`` with ``aggregate_krum`` (``to_keep=0``) is matched exactly;
  ByzFL has no Bulyan.
- SMEA and CAF: ByzFL estimates the top eigenvalue with one power step from a random vector, exact
  only for d = 1; the exact comparisons use d = 1 (and, for SMEA, inputs where one subset is
  clearly best), the others a float64 numpy reference with d x d covariances.
- CAF: ByzFL takes ``tau_max`` over all rows, zeroed ones included; fedrobust over the rows of
  positive weight. ByzFL's own ``__call__`` is run with that one line changed.
"""

from __future__ import annotations

import inspect
import itertools
import math
import textwrap
import time

import numpy as np
import pytest
import torch
from flwr.server.strategy.aggregate import aggregate_bulyan, aggregate_krum

from _byzfl import load_byzfl
from fedrobust.aggregators.bulyan import bulyan, bulyan_select, meamed
from fedrobust.aggregators.filtering import caf, caf_weights
from fedrobust.aggregators.neighbours import monna, monna_select
from fedrobust.aggregators.rules import RULES
from fedrobust.aggregators.rules_selection import BulyanRule, CAFRule, MDARule, MeamedRule, MoNNARule, SMEARule
from fedrobust.aggregators.subsets import (
    MDA_MAX_SUBSETS,
    SMEA_MAX_SUBSETS,
    minimum_diameter_average,
    minimum_diameter_subset,
    smea,
    smea_subset,
)
from fedrobust.config import ConfigError, RunConfig

BYZFL = load_byzfl()
NAMES = ["bulyan", "caf", "mda", "meamed", "monna", "smea"]
FUNCTIONS = {
    "bulyan": bulyan,
    "caf": caf,
    "mda": minimum_diameter_average,
    "meamed": meamed,
    "monna": monna,
    "smea": smea,
}


def t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def gaussian(n: int, d: int, seed: int, outliers: int = 0, far: float = 8.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.3, 1.0, size=(n, d))
    x[:outliers] += far * rng.choice([-1.0, 1.0], size=(outliers, d))
    return x


# ------------------------------------------------------------------------------ hand-computed cases
def test_meamed_by_hand():
    x = np.array([[1.0, 10.0], [2.0, -3.0], [3.0, 0.0], [4.0, 1.0], [1000.0, 2.0]])
    # column 0: median 3, distances 2 1 0 1 997 -> keep 1..4 (f=1) / 2, 3, 4 (f=2)
    # column 1: median 1, distances 9 4 1 0 1 -> keep 1, 0, 2, -3 (f=1) / 1, 0, 2 (f=2)
    np.testing.assert_allclose(meamed(t(x), 1).numpy(), [2.5, 0.0])
    np.testing.assert_allclose(meamed(t(x), 2).numpy(), [3.0, 1.0])
    np.testing.assert_allclose(meamed(t(x), 0).numpy(), x.mean(axis=0))


def test_bulyan_by_hand():
    x = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 60.0])[:, None]
    # f=1, theta=6, Krum with m-3 neighbours: m=8 rows 2, 3, 4 score 19 (lowest index: 2);
    # m=7 {0,1,3,4,5,6,60}: row 4 scores 1+1+4+9=15 ... the last pick 0; 60 is never picked.
    assert bulyan_select(t(x), 1).tolist() == [2, 4, 3, 1, 5, 0]
    # beta = 4 values of 0..5 nearest their median 2.5: 1, 2, 3, 4
    assert bulyan(t(x), 1).item() == pytest.approx(2.5)
    # 2-D, n=7, f=1: theta=5, beta=3; the far row is never picked. In column 1 the picked values
    # 0, 0, 1, 0.5, 0.6 have median 0.5 and three at distance 0.5: the lowest row index is kept.
    y = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.5], [0.4, 0.6], [50.0, -50.0]])
    chosen = set(bulyan_select(t(y), 1).tolist())
    assert len(chosen) == 5 and 6 not in chosen
    picked = y[sorted(chosen)]
    med = np.median(picked, axis=0)
    want = [np.sort(picked[np.argsort(np.abs(picked[:, k] - med[k]), kind="stable")[:3], k]).mean() for k in range(2)]
    np.testing.assert_allclose(bulyan(t(y), 1).numpy(), want)


def test_mda_by_hand():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [9.0, 9.0], [0.5, 0.4]])
    # f=1: every 4-set with (9, 9) has a diameter > 12; without it {0,1,2,4} has diameter sqrt(2)
    kept, diameter = minimum_diameter_subset(t(x), 1)
    assert kept.tolist() == [0, 1, 2, 4] and diameter == pytest.approx(math.sqrt(2))
    np.testing.assert_allclose(minimum_diameter_average(t(x), 1).numpy(), [0.375, 0.35])
    # f=2: {0,1,4}: max(1, 0.64, 0.41) -> diameter 1; {0,2,4}: max(1, 0.41, 0.61) -> 1; {1,2,4}: sqrt 2;
    # {0,1,2}: sqrt 2. Tie at 1: the first 3-set in combinations order, {0,1,4}.
    kept, diameter = minimum_diameter_subset(t(x), 2)
    assert kept.tolist() == [0, 1, 4] and diameter == pytest.approx(1.0)


def test_monna_by_hand():
    x = np.array([[0.0], [1.0], [3.0], [100.0], [2.5]])
    # pivot 0: nearest 3 = 0, 1, 2.5; pivot 3 (the outlier): 100, 3, 2.5; medoid: row 4 (2.5), with 3 and 1
    assert monna(t(x), 2, pivot=0).item() == pytest.approx(3.5 / 3)
    assert monna(t(x), 2, pivot=3).item() == pytest.approx(105.5 / 3)
    assert monna_select(t(x), 2).tolist() == [4, 2, 1]
    assert monna(t(x), 2).item() == pytest.approx(6.5 / 3)


def test_caf_by_hand():
    x = np.array([0.0, 1.0, 2.0, 3.0, 40.0])
    # step 1: mu = 9.2, tau_i = (x_i - 9.2)^2, the largest (40) -> weight 0
    c = 1 - (x - 9.2) ** 2 / (40 - 9.2) ** 2
    # step 2 (sum c = 3.74 > n - 2f = 3): mu_c = sum c x / sum c, the smaller eigenvalue: the answer
    mu = (c * x).sum() / c.sum()
    out = caf_weights(t(x[:, None]), 1)
    assert out.iterations == 2
    np.testing.assert_allclose(out.weights.numpy(), c / c.sum(), rtol=1e-12)
    assert caf(t(x[:, None]), 1).item() == pytest.approx(mu, rel=1e-12)
    assert out.eigenvalue == pytest.approx((c * (x - mu) ** 2).sum() / c.sum(), rel=1e-12)


def test_smea_by_hand():
    x = np.array([[1.0], [2.0], [4.0], [50.0]])
    # f=1: variance of {1, 2, 4} = 42/27; every set with 50 is far larger
    kept, top = smea_subset(t(x), 1)
    assert kept.tolist() == [0, 1, 2] and top == pytest.approx(42 / 27)
    assert smea(t(x), 1).item() == pytest.approx(7 / 3)
    # 2-D: {(0,0), (2,0), (0,1)} has covariance [[8/9, -2/9], [-2/9, 2/9]], top eigenvalue (10 + sqrt 52) / 18
    y = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 1.0], [9.0, 9.0]])
    kept, top = smea_subset(t(y), 1)
    assert kept.tolist() == [0, 1, 2] and top == pytest.approx((10 + math.sqrt(52)) / 18)


# ------------------------------------------------------------------------------ argument errors
def test_bulyan_refuses_too_few_rows_and_the_rule_caps_f():
    with pytest.raises(ValueError, match=r"Bulyan needs n >= 4f \+ 3 rows, got n=6 with f=1"):
        bulyan(torch.zeros(6, 3), 1)
    rows = torch.randn(10, 4)
    assert BulyanRule(f=3)(rows, None, 1).metrics == {"bulyan_f": 1}  # (10 - 3) // 4
    assert BulyanRule()(rows, None, 1).metrics == {"bulyan_f": 1}  # floor(0.2 * 10) = 2, capped
    assert BulyanRule(byzantine_fraction=0.1)(rows, None, 1).metrics == {"bulyan_f": 1}
    step = BulyanRule(f=2)(rows[:2], None, 1)
    assert step.metrics == {"bulyan_f": 0} and torch.allclose(step.update, rows[:2].mean(0))


@pytest.mark.parametrize("fn, label", [(meamed, "Meamed"), (minimum_diameter_average, "MDA"), (monna, "MoNNA"),
                                       (caf, "CAF"), (smea, "SMEA")])
def test_the_functions_refuse_half_the_rows(fn, label):
    with pytest.raises(ValueError, match=rf"{label} needs 2f < n, got f=3 with n=6 rows"):
        fn(torch.zeros(6, 2), 3)
    with pytest.raises(ValueError, match="f"):
        fn(torch.zeros(6, 2), -1)
    with pytest.raises(TypeError):
        fn(torch.zeros(6, dtype=torch.int64).view(3, 2), 0)


def test_the_rules_cap_f_below_half_the_rows():
    rows = torch.randn(7, 3, dtype=torch.float64)
    for cls in (MeamedRule, MDARule, MoNNARule, CAFRule, SMEARule):
        assert cls(f=5)(rows, None, 1).metrics[f"{cls.name}_f"] == 3
        assert cls(byzantine_fraction=0.4)(rows, None, 1).metrics[f"{cls.name}_f"] == 2  # floor(2.8)
    one = torch.randn(1, 3)
    for name in NAMES:
        assert torch.equal(RULES[name]()(one.clone(), None, 1).update, one[0])


def test_subset_rules_refuse_too_many_subsets():
    big = torch.randn(40, 3)
    with pytest.raises(ValueError, match=r"MDA enumerates all C\(n, f\) = C\(40, 10\) = 847660528 subsets"):
        minimum_diameter_average(big, 10)
    with pytest.raises(ValueError, match=r"SMEA enumerates all C\(n, f\) = C\(30, 6\) = 593775 subsets"):
        smea(big[:30], 6)
    assert math.comb(30, 6) <= MDA_MAX_SUBSETS and math.comb(30, 6) > SMEA_MAX_SUBSETS
    # on construction when clients-per-round is known ...
    with pytest.raises(ValueError, match=r"C\(40, 10\)"):
        MDARule(clients_per_round=40, byzantine_fraction=0.25)
    with pytest.raises(ValueError, match=r"C\(30, 6\)"):
        SMEARule(clients_per_round=30)
    MDARule(clients_per_round=30)  # C(30, 6) = 593775 is allowed
    # ... so a run's config check refuses it; otherwise in the round
    with pytest.raises(ConfigError, match="SMEA enumerates"):
        RunConfig.from_mapping({"strategy": "smea", "num_clients": 30, "clients_per_round": 30, "device": "cpu",
                                "byzantine_fraction": 0.2})
    with pytest.raises(ValueError, match=r"C\(40, 10\)"):
        MDARule(byzantine_fraction=0.25)(big, None, 1)


def test_monna_pivot_checks():
    with pytest.raises(ValueError, match="pivot"):
        MoNNARule(pivot=-2)
    with pytest.raises(ValueError, match=r"pivot must be a row index below n=5 \(or -1: the medoid\), got 5"):
        MoNNARule(pivot=5)(torch.randn(5, 2), None, 1)
    rule = MoNNARule.from_config(RunConfig(strategy="monna", rule_params="pivot=2,f=1"))
    assert (rule.pivot, rule.f) == (2, 1)


def test_rule_params_name_the_rules_parameters():
    with pytest.raises(ValueError, match="bulyan takes no parameter 'pivot'"):
        BulyanRule.from_config(RunConfig(strategy="bulyan", rule_params="pivot=1"))
    assert MDARule.from_config(RunConfig(strategy="mda", rule_params="f=2", clients_per_round=10)).f == 2


# ------------------------------------------------------------------------------ ByzFL and Flower
@pytest.mark.parametrize("n, f", [(5, 1), (9, 2), (11, 5), (12, 3), (7, 0)])
def test_meamed_matches_byzfl(n, f):
    x = gaussian(n, 13, seed=n + f, outliers=f)
    want = BYZFL.agg.Meamed(f=f)(x)
    np.testing.assert_allclose(meamed(t(x), f).numpy(), want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n, f, outliers", [(5, 1, 1), (9, 2, 2), (9, 4, 1), (10, 3, 0), (13, 4, 4)])
def test_mda_matches_byzfl(n, f, outliers):
    x = gaussian(n, 6, seed=10 * n + f, outliers=outliers)
    want = BYZFL.agg.MDA(f=f)(x)
    np.testing.assert_allclose(minimum_diameter_average(t(x), f).numpy(), want, rtol=0, atol=1e-12)


def test_mda_breaks_ties_as_byzfl():
    # many 3-sets of this grid share a diameter: ByzFL keeps the first in combinations order
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.0], [0.0, 2.0]])
    for f in (1, 2):
        np.testing.assert_allclose(minimum_diameter_average(t(x), f).numpy(), BYZFL.agg.MDA(f=f)(x), atol=1e-12)


@pytest.mark.parametrize("n, f", [(5, 1), (9, 2), (10, 4)])
def test_monna_matches_byzfl_with_the_same_pivot(n, f):
    x = gaussian(n, 8, seed=n, outliers=f)
    for pivot in range(n):
        want = BYZFL.agg.MoNNA(f=f, idx=pivot)(x)
        np.testing.assert_allclose(monna(t(x), f, pivot=pivot).numpy(), want, rtol=0, atol=1e-12)
    # the default pivot is the medoid: ByzFL with idx = that row
    dist = np.linalg.norm(x[:, None] - x[None], axis=2).sum(axis=1)
    np.testing.assert_allclose(monna(t(x), f).numpy(), BYZFL.agg.MoNNA(f=f, idx=int(np.argmin(dist)))(x), atol=1e-12)


@pytest.mark.parametrize("n, f", [(5, 1), (8, 3), (10, 2), (11, 5)])
def test_smea_matches_byzfl_in_one_dimension(n, f):
    # for d = 1 ByzFL's one power step is exact
    x = gaussian(n, 1, seed=n * f, outliers=1)
    np.testing.assert_allclose(smea(t(x), f).numpy(), BYZFL.agg.SMEA(f=f)(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_smea_matches_byzfl_when_one_subset_is_clearly_best(seed):
    # f outliers far away: one (n - f)-set has a small covariance, all others a huge one
    n, f = 9, 2
    x = gaussian(n, 6, seed=seed, outliers=f, far=1e3)
    np.testing.assert_allclose(smea(t(x), f).numpy(), BYZFL.agg.SMEA(f=f)(x), rtol=0, atol=1e-12)


def _smea_reference(x: np.ndarray, f: int) -> np.ndarray:
    """SMEA with the d x d covariances and exact eigenvalues, in numpy."""
    n = len(x)
    best, best_value = None, np.inf
    for subset in itertools.combinations(range(n), n - f):
        rows = x[list(subset)]
        centred = rows - rows.mean(axis=0)
        value = np.linalg.eigvalsh(centred.T @ centred / len(rows))[-1]
        if value < best_value:
            best, best_value = subset, value
    return x[list(best)].mean(axis=0)


@pytest.mark.parametrize("n, f, d", [(7, 2, 5), (9, 3, 12), (10, 4, 3)])
def test_smea_matches_an_exact_numpy_reference(n, f, d):
    x = gaussian(n, d, seed=n + d, outliers=1, far=3.0)
    np.testing.assert_allclose(smea(t(x), f).numpy(), _smea_reference(x, f), rtol=0, atol=1e-12)


def _caf_reference(x: np.ndarray, f: int) -> np.ndarray:
    """CAF with the d x d weighted covariance and its exact top eigenvector, in numpy; tau_max over
    the rows of positive weight."""
    n = len(x)
    c = np.ones(n)
    best, best_value = None, np.inf
    while c.sum() > n - 2 * f:
        mu = (c[:, None] * x).sum(axis=0) / c.sum()
        diffs = x - mu
        cov = (c[:, None] * diffs).T @ diffs / c.sum()
        values, vectors = np.linalg.eigh(cov)
        if values[-1] < best_value:
            best, best_value = mu, values[-1]
        tau = (diffs @ vectors[:, -1]) ** 2
        c = c * (1 - tau / tau[c > 0].max())
    return best


@pytest.mark.parametrize("n, f, d", [(7, 2, 5), (9, 3, 12), (10, 4, 3), (11, 2, 40)])
def test_caf_matches_an_exact_numpy_reference(n, f, d):
    x = gaussian(n, d, seed=n * d, outliers=f, far=4.0)
    np.testing.assert_allclose(caf(t(x), f).numpy(), _caf_reference(x, f), rtol=0, atol=1e-10)


def _byzfl_caf_with_active_tau_max():
    """ByzFL's CAF ``__call__`` with ``tau_max`` taken over the rows of positive weight (one line)."""
    source = textwrap.dedent(inspect.getsource(BYZFL.agg.CAF.__call__))
    old = "tau_max = tau.max()"
    assert source.count(old) == 1
    namespace: dict = {}
    exec(source.replace(old, "tau_max = tau[c > 0].max()"), BYZFL.agg.CAF.__call__.__globals__, namespace)
    return type("ActiveCAF", (BYZFL.agg.CAF,), {"__call__": namespace["__call__"]})


@pytest.mark.parametrize("n, f", [(5, 1), (8, 3), (10, 2), (11, 4)])
def test_caf_matches_byzfl_in_one_dimension(n, f):
    x = gaussian(n, 1, seed=n + f, outliers=2, far=5.0)
    want = _byzfl_caf_with_active_tau_max()(f=f)(x)
    np.testing.assert_allclose(caf(t(x), f).numpy(), want, rtol=0, atol=1e-12)


def test_caf_matches_unchanged_byzfl_when_one_step_ends_the_filter():
    # two rows tie for the largest projection: both zeroed at once, sum c <= n - 2 after one step
    x = np.array([[-3.0], [0.1], [-0.2], [0.0], [0.1], [3.0]])
    out = caf_weights(t(x), 1)
    assert out.iterations == 1
    np.testing.assert_allclose(caf(t(x), 1).numpy(), BYZFL.agg.CAF(f=1)(x), rtol=0, atol=1e-12)


def test_caf_ends_where_byzfl_stalls():
    # a far row, once zeroed, keeps ByzFL's tau_max: its other weights barely move (it would loop on);
    # fedrobust zeroes a row per step.
    x = np.concatenate([gaussian(9, 1, seed=1), [[1e20], [-1e20]]])
    out = caf_weights(t(x), 2)
    assert out.iterations <= 11 and out.weights[-2:].tolist() == [0.0, 0.0]
    # ByzFL's convention after the far rows are zeroed: tau / tau_max rounds to 0 for every other row
    c = np.r_[np.ones(9), 0.0, 0.0]
    mu = (c * x[:, 0]).sum() / c.sum()
    tau = (x[:, 0] - mu) ** 2
    assert np.array_equal(c * (1 - tau / tau.max()), c) and c.sum() > len(x) - 4


def flower_bulyan(x: np.ndarray, f: int) -> np.ndarray:
    results = [([row.copy()], 1) for row in x]
    return aggregate_bulyan(results, num_malicious=f, aggregation_rule=aggregate_krum, to_keep=0)[0]


@pytest.mark.parametrize("n, f", [(7, 1), (8, 1), (11, 2), (12, 2), (15, 3), (5, 0)])
def test_bulyan_matches_flower(n, f):
    x = gaussian(n, 9, seed=n + f, outliers=f)
    np.testing.assert_allclose(bulyan(t(x), f).numpy(), flower_bulyan(x, f), rtol=0, atol=1e-12)


def test_bulyan_matches_flower_on_colluders():
    # f identical colluders near the honest rows: Krum picks them early, the coordinate stage trims them
    x = gaussian(11, 5, seed=3)
    x[:2] = x[2:].mean(axis=0) + 0.3
    np.testing.assert_allclose(bulyan(t(x), 2).numpy(), flower_bulyan(x, 2), rtol=0, atol=1e-12)
    with pytest.raises(ValueError):
        flower_bulyan(x[:10], 2)  # Flower also refuses n < 4f + 3
    with pytest.raises(ValueError, match="n=10 with f=2"):
        bulyan(t(x[:10]), 2)


# ------------------------------------------------------------------------------ scale safety
MAGNITUDES = [1e3, 1e20, 1e30, 3e38]


def _hostile(magnitude: float, seed: int = 0, n: int = 11, f: int = 2, d: int = 20) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    honest = 0.1 + 0.05 * torch.randn(n - f, d, generator=gen)
    signs = torch.where(torch.rand(f, d, generator=gen) < 0.5, -1.0, 1.0)
    outliers = (magnitude * signs.double() * (0.5 + 0.5 * torch.rand(f, d, generator=gen).double())).float()
    outliers[1] = -outliers[1].abs()  # one of them on the negative side everywhere
    return torch.cat([outliers, honest])


@pytest.mark.parametrize("name", NAMES)
def test_far_rows_cannot_move_the_rules(name):
    rule = RULES[name](f=2)
    base = rule(_hostile(MAGNITUDES[0]), None, 1).update
    honest_mean = _hostile(1.0)[2:].mean(dim=0)
    assert float((base - honest_mean).abs().max()) < 0.1
    for magnitude in MAGNITUDES[1:]:
        out = rule(_hostile(magnitude), None, 1).update
        assert out.dtype == torch.float32 and bool(torch.isfinite(out).all()), magnitude
        # CAF's weights depend on the outliers' distance (to O(spread / distance)); the others not at all
        torch.testing.assert_close(out, base, rtol=0, atol=1e-3 if name == "caf" else 1e-6)
    far = [rule(_hostile(m), None, 1).update for m in MAGNITUDES[1:]]
    for out in far[1:]:
        torch.testing.assert_close(out, far[0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_float64_input(name):
    x = _hostile(1e30).double()
    out = FUNCTIONS[name](x, 2)
    assert out.dtype == torch.float64 and bool(torch.isfinite(out).all())
    torch.testing.assert_close(out.float(), FUNCTIONS[name](x.float(), 2), rtol=0, atol=1e-5)


def test_the_limits_run_in_a_few_seconds():
    # about MDA_MAX_SUBSETS / 10 and SMEA_MAX_SUBSETS / 10 subsets: each well under a second
    x = torch.randn(25, 30)
    start = time.perf_counter()
    minimum_diameter_average(x, 4)  # C(25, 4) = 12650
    smea(x[:16], 3)  # C(16, 3) = 560
    assert time.perf_counter() - start < 5.0


# ------------------------------------------------------------------------------ plugin and runs
def test_plugin_classes_take_the_rules_parameters():
    from fedrobust.plugin import legacy, message

    strategy = legacy.FedMoNNA(pivot=0, f=1, fraction_fit=0.5)
    assert strategy.aggregator.rule == MoNNARule(f=1, pivot=0) and strategy.fraction_fit == 0.5
    assert "pivot=0" in repr(strategy)
    assert message.FedBulyan(f=2).aggregator.rule == BulyanRule(f=2)
    assert {legacy.PLUGINS[n].__name__ for n in NAMES} == {
        "FedBulyan", "FedMeamed", "FedMDA", "FedMoNNA", "FedCAF", "FedSMEA"}


@pytest.mark.parametrize("name", NAMES)
def test_in_process_run_ends_finite(name):
    from fedrobust.run.inprocess import run_inprocess

    cfg = RunConfig(strategy=name, dataset="digits", model="logistic", num_clients=11, clients_per_round=11, rounds=3,
                    attack="bit-flip", byzantine_fraction=0.2, device="cpu", lr=0.1,
                    rule_params="pivot=0" if name == "monna" else "")
    seen = {}
    results = run_inprocess(cfg, after_round=lambda s, r: seen.__setitem__("x", s.x.clone()))
    assert bool(torch.isfinite(seen["x"]).all())
    assert len(results["rounds"]) == 3
    assert all(r[f"{name}_f"] == 2 for r in results["rounds"])  # floor(0.2 * 11); Bulyan: 11 >= 4 * 2 + 3


@pytest.mark.parametrize("scale, spread", [(1.0, 1.0), (1e4, 1e-2), (1.0, 1e20)])
def test_monna_pivot_distances_in_one_pass_equal_the_exact_ones(scale, spread):
    """A given pivot's distances skip the Gram matrix; on tight clusters far from 0 and next to
    1e20-sized rows they match the float64 reference, and so does the selection."""
    from fedrobust.aggregators.neighbours import pivot_squared_distances

    gen = torch.Generator().manual_seed(3)
    x = scale + torch.randn(9, 5000, generator=gen) * min(spread, 1.0)
    x[-2:] *= spread if spread > 1 else 1.0
    exact = ((x.double() - x[1].double()) ** 2).sum(dim=1)
    got = pivot_squared_distances(x, 1)
    assert torch.allclose(got, exact, rtol=1e-12, atol=0.0)
    others = [i for i in torch.argsort(exact, stable=True).tolist() if i != 1]
    assert monna_select(x, 2, pivot=1).tolist() == [1, *others[:6]]
