"""The clustering rules: dnc, signguard, clipped-clustering (fedrobust.aggregators.rules_clustering).

Hand-computed cases, argument errors, determinism by seed, scale safety, float64 input, a plugin
class with parameters and a short in-process run of each.

No peer implementation is installed (ByzFL has none of the three; Blades is not a dependency).
Instead, each rule is compared with a plain numpy transcription of what Blades' (and, for DnC,
FLPoison's) code computes, written here from their description, on inputs where the conventions
agree; the cases where they differ are spelled out below and in the rules' docstrings:

- DnC: Blades (``DnC``) and FLPoison take the SVD of the centred (n, b) sub-matrix; fedrobust
  the eigendecomposition of its Gram matrix: the same scores, so the same kept rows, and the
  aggregates agree to float64 rounding (``test_dnc_matches_the_svd_transcription``).
- SignGuard: Blades clips every row to the median norm *before* its norm filter, so a row of 5x
  the median norm passes Blades' filter (its clipped norm is the median) and is averaged; the
  paper's order, fedrobust's, drops it (``test_signguard_upper_bound_drops_what_blades_keeps``).
  Where no row exceeds ``upper`` times the median, Blades' pipeline and fedrobust's agree to
  1e-12 (``test_signguard_matches_the_blades_transcription``).
- Clipped clustering: Blades' pipeline (clip to the median of all norms seen, ``1 − cos``
  distances, ``AgglomerativeClustering(2, precomputed, average)``, majority label) is matched
  to 1e-12 over three rounds of history (``test_clipped_clustering_matches_the_blades_transcription``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.cluster import AgglomerativeClustering, KMeans

from fedrobust.aggregators import clustering as C
from fedrobust.aggregators.rules import RULES
from fedrobust.aggregators.rules_clustering import ClippedClusteringRule, DnCRule, SignGuardRule
from fedrobust.config import RunConfig

NAMES = ["clipped-clustering", "dnc", "signguard"]


def t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def honest_and_outliers(seed: int, n: int, f: int, d: int, far: float = 20.0) -> np.ndarray:
    """``n − f`` honest rows around 0.3 and ``f`` rows far out along one shared direction (first)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.3, 0.2, size=(n, d))
    x[:f] = far * rng.choice([-1.0, 1.0], size=d) + rng.normal(0.0, 0.2, size=(f, d))
    return x


# --------------------------------------------------------------------- numpy transcriptions (peers)
def numpy_dnc(x: np.ndarray, f: int, columns_per_iteration: list[np.ndarray], c: float = 1.0) -> tuple[np.ndarray, list[int]]:
    """Blades' / FLPoison's DnC on given coordinate draws: SVD of the centred sub-matrix,
    ``(<x_i − mu, v>)^2``, the ``n − int(c f)`` lowest scores, intersected, averaged."""
    n = x.shape[0]
    keep = set(range(n))
    for cols in columns_per_iteration:
        sub = x[:, cols]
        centred = sub - sub.mean(axis=0)
        v = np.linalg.svd(centred, full_matrices=False)[2][0]
        scores = (centred @ v) ** 2
        keep &= set(np.argsort(scores, kind="stable")[: n - int(c * f)].tolist())
    kept = sorted(keep)
    return x[kept].mean(axis=0), kept


def numpy_signguard_blades(x: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Blades' ``Signguard`` (agg="mean"): clip to the median norm, filter the clipped norms by
    [0.1, 3] · M, KMeans(2) on (pos, neg, zero) fractions, label 1 if more than n // 2 have it."""
    n, d = x.shape
    norms = np.linalg.norm(x, axis=1)
    m = np.median(norms)
    clipped = x * np.minimum(1.0, m / norms)[:, None]
    cn = np.linalg.norm(clipped, axis=1)
    s1 = {i for i in range(n) if 0.1 * m <= cn[i] <= 3.0 * m}
    features = np.stack([(x > 0).sum(1), (x < 0).sum(1), (x == 0).sum(1)], axis=1) / d
    labels = KMeans(n_clusters=2, random_state=0, n_init=10).fit(features).labels_
    flag = 1 if labels.sum() > n // 2 else 0
    kept = sorted(s1 & {i for i in range(n) if labels[i] == flag})
    return clipped[kept].mean(axis=0), kept


def numpy_clipped_clustering_blades(rounds: list[np.ndarray]) -> list[tuple[np.ndarray, list[int]]]:
    """Blades' ``Clippedclustering`` over several rounds (its norm history kept across calls)."""
    history: list[float] = []
    out = []
    for x in rounds:
        n = x.shape[0]
        norms = np.linalg.norm(x, axis=1)
        history.extend(norms.tolist())
        threshold = min(np.median(history), 1e5)
        clipped = x * np.minimum(1.0, threshold / norms)[:, None]
        unit = clipped / np.linalg.norm(clipped, axis=1, keepdims=True)
        dist = 1.0 - unit @ unit.T
        np.fill_diagonal(dist, 0.0)
        labels = AgglomerativeClustering(n_clusters=2, metric="precomputed", linkage="average").fit(dist).labels_
        flag = 1 if labels.sum() > n // 2 else 0
        kept = [i for i in range(n) if labels[i] == flag]
        out.append((clipped[kept].mean(axis=0), kept))
    return out


# ------------------------------------------------------------------------------ hand-computed cases
def test_dnc_by_hand():
    # Symmetric under swapping the coordinates: the top direction is v = (1, 1)/sqrt(2); the mean
    # is (7, 7), so the scores are (x1 + x2 - 14)^2 / 2: 84.5, 84.5, 72, 98, 338, 338 -> rows 4
    # and 5 are dropped for f = 2
    x = t([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [20.0, 20.0], [20.0, 20.0]])
    centred = x.numpy() - x.numpy().mean(axis=0)
    v = np.array([1.0, 1.0]) / np.sqrt(2.0)
    assert np.isclose(abs(np.linalg.svd(centred)[2][0] @ v), 1.0)
    scores = C.dnc_scores(x)
    np.testing.assert_allclose((scores / scores.max()).numpy(), np.array([84.5, 84.5, 72, 98, 338, 338]) / 338)
    out = C.dnc(x, 2)
    assert out.kept.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(out.aggregate.numpy(), [0.5, 0.5])
    # c = 1.5: floor(1.5 * 2) = 3 dropped: also row 3 (score 98)
    assert C.dnc(x, 2, c=1.5).kept.tolist() == [0, 1, 2]
    assert C.dnc(x, 0).kept.tolist() == list(range(6))  # f = 0: the mean


def test_dnc_falls_back_to_the_rows_kept_most_often():
    # On column 0 row 1 is nearest the mean (0.733), on column 1 row 0: with one row kept per
    # draw (f = 2 of 3) and both columns drawn, no row is kept every time.
    x = t([[0.0, 1.0], [1.0, 0.0], [1.2, 1.2]])
    gen = torch.Generator().manual_seed(5)
    draws = [int(torch.randperm(2, generator=gen)[0]) for _ in range(9)]
    assert 0 < sum(draws) < 9  # both columns drawn
    counts = {1: draws.count(0), 0: draws.count(1)}  # column 0 keeps row 1, column 1 row 0
    expected = sorted(r for r, k in counts.items() if k == max(counts.values()))
    out = C.dnc(x, 2, subsample=1, iterations=9, generator=torch.Generator().manual_seed(5))
    assert out.kept.tolist() == expected
    np.testing.assert_allclose(out.aggregate.numpy(), x.numpy()[expected].mean(axis=0))


@pytest.mark.parametrize("seed", range(4))
def test_dnc_matches_the_svd_transcription(seed):
    x = honest_and_outliers(seed, 12, 3, 40)
    x[3:5] += np.random.default_rng(seed).normal(0, 1.0, size=(2, 40))  # two noisier honest rows
    gen = torch.Generator().manual_seed(seed)
    draws = [torch.randperm(40, generator=gen)[:15].sort().values.numpy() for _ in range(3)]
    want, kept = numpy_dnc(x, 3, draws, c=1.5)
    out = C.dnc(t(x), 3, c=1.5, subsample=15, iterations=3, generator=torch.Generator().manual_seed(seed))
    assert out.kept.tolist() == kept
    assert not set(kept) & {0, 1, 2}
    np.testing.assert_allclose(out.aggregate.numpy(), want, rtol=0, atol=1e-12)


def test_signguard_by_hand():
    # Norms: rows 0-3 sqrt(7), rows 4, 5 sqrt(10), row 6 2, row 7 400; sorted, the 4th and 5th
    # are sqrt(7): M = sqrt(7)
    x = np.array([[1.0, 2.0, 1.0, -1.0], [2.0, 1.0, 1.0, -1.0], [1.0, 1.0, 2.0, -1.0],
                  [1.0, 1.0, 1.0, -2.0], [2.0, 2.0, 1.0, -1.0], [1.0, 2.0, 2.0, -1.0],
                  [-1.0, -1.0, -1.0, 1.0], [200.0, 200.0, 200.0, -200.0]])
    norms = np.linalg.norm(x, axis=1)
    m = np.median(norms)
    assert np.isclose(m, np.sqrt(7.0))
    out = C.signguard(t(x))
    assert out.median_norm == pytest.approx(m)
    assert out.norm_kept.tolist() == [True] * 7 + [False]  # 400 / sqrt(7) > 3
    assert out.sign_kept.tolist() == [True] * 6 + [False, True]  # row 6: 1/4 positive, 3/4 negative
    assert out.kept.tolist() == [0, 1, 2, 3, 4, 5]
    want = (x[:6] * np.minimum(1.0, m / norms[:6])[:, None]).mean(axis=0)
    np.testing.assert_allclose(out.aggregate.numpy(), want, rtol=0, atol=1e-12)
    assert C.sign_features(t(x)).tolist()[6] == [0.25, 0.0, 0.75]


def test_signguard_falls_back_to_the_norm_filter_and_zero_median():
    # Rows 0-2 share their signs but fail the norm filter (0.005 and 50 times the median 2);
    # rows 3, 4 pass it with other signs: the intersection is empty, rows 3 and 4 are averaged.
    x = np.array([[0.01, 0.0], [0.0, 0.01], [100.0, 0.0], [-2.0, 0.0], [-2.0, 0.0]])
    x[1] = [0.01, 0.0]
    out = C.signguard(t(x))
    assert out.median_norm == 2.0
    assert out.sign_kept.tolist() == [True, True, True, False, False]
    assert out.kept.tolist() == [3, 4]
    np.testing.assert_allclose(out.aggregate.numpy(), [-2.0, 0.0])
    zero = C.signguard(t([[0.0, 0.0], [0.0, 0.0], [5.0, 1.0]]))  # M = 0: every row clipped to 0
    assert zero.median_norm == 0.0 and zero.aggregate.tolist() == [0.0, 0.0]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # Blades' KMeans on one distinct point
def test_signguard_upper_bound_drops_what_blades_keeps():
    rng = np.random.default_rng(0)
    x = np.abs(rng.normal(1.0, 0.1, size=(7, 6)))
    x[0] *= 5.0  # 5x the median norm, same signs as the others
    blades, blades_kept = numpy_signguard_blades(x)
    assert 0 in blades_kept  # clipped first, its norm is the median: Blades' R = 3 cannot reject it
    out = C.signguard(t(x))
    assert 0 not in out.kept.tolist() and out.kept.tolist() == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("seed", range(3))
def test_signguard_matches_the_blades_transcription(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.2, 1.0, size=(10, 50))
    x[:3] = -np.abs(x[:3]) * 1.5  # all-negative rows: another sign cluster, norms within [0.1, 3] M
    want, kept = numpy_signguard_blades(x)
    out = C.signguard(t(x))
    assert out.kept.tolist() == kept == list(range(3, 10))
    np.testing.assert_allclose(out.aggregate.numpy(), want, rtol=0, atol=1e-12)


def test_signguard_meanshift_keeps_the_largest_mode():
    x = honest_and_outliers(1, 12, 4, 30)
    x[:4] = -np.abs(x[:4])  # the outliers: all negative
    x[4:] = np.abs(x[4:]) * np.where(np.arange(30) < 24, 1.0, -1.0)  # honest: 80% positive
    out = C.signguard(t(x), clustering="meanshift")
    assert not out.sign_kept[:4].any() and bool(out.sign_kept[4:].all())
    assert out.kept.tolist() == list(range(4, 12))


def test_clipped_clustering_by_hand():
    # Cosines: rows 0-3 point along +x (within 6 degrees), rows 4, 5 along (-1, 5); threshold 2
    # clips (4, 0) to (2, 0): mean of (1, .1), (1, -.1), (2, 0), (1, 0) = (1.25, 0)
    x = t([[1.0, 0.1], [1.0, -0.1], [4.0, 0.0], [1.0, 0.0], [-1.0, 5.0], [-1e30, 5e30]])
    out = C.clipped_clustering(x, 2.0)
    assert out.kept.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(out.aggregate.numpy(), [1.25, 0.0], rtol=0, atol=1e-15)
    dist = C.cosine_distances(x).numpy()
    np.testing.assert_allclose(dist[0, 2], 1 - 1 / np.sqrt(1.01), rtol=1e-12)
    np.testing.assert_allclose(dist[4, 5], 0.0, atol=1e-12)


def test_clipped_clustering_rule_keeps_the_norm_history():
    rule = ClippedClusteringRule()
    r1 = t([[3.0, 4.0], [6.0, 8.0], [0.6, 0.8], [-30.0, 0.0]])  # norms 5, 10, 1, 30
    s1 = rule(r1.clone(), None, 1)
    assert s1.state.tolist() == [5.0, 10.0, 1.0, 30.0]
    assert s1.metrics["clip_threshold"] == 7.5  # median of 1, 5, 10, 30
    r2 = t([[0.0, 1.0], [0.0, 2.0], [0.0, 1.5]])  # norms 1, 2, 1.5
    s2 = rule(r2.clone(), s1.state, 2)
    assert s2.state.tolist() == [5.0, 10.0, 1.0, 30.0, 1.0, 2.0, 1.5]
    assert s2.metrics["clip_threshold"] == 2.0  # median of 1, 1, 1.5, 2, 5, 10, 30
    bounded = ClippedClusteringRule(history=3)
    assert bounded(r2.clone(), s1.state, 2).state.tolist() == [1.0, 2.0, 1.5]
    capped = ClippedClusteringRule(max_norm=0.5)(r1.clone(), None, 1)
    assert capped.metrics["clip_threshold"] == 0.5
    # Rows 0-2 share a direction and are clipped to 7.5: (3, 4), (4.5, 6), (0.6, 0.8) averaged
    np.testing.assert_allclose(s1.update.numpy(), [(3 + 4.5 + 0.6) / 3, (4 + 6 + 0.8) / 3])


def test_clipped_clustering_matches_the_blades_transcription():
    rng = np.random.default_rng(4)
    rounds = []
    for _ in range(3):
        x = rng.normal(0.5, 0.3, size=(9, 25))
        x[:3] = -4.0 * x[:3] + rng.normal(0, 0.1, size=(3, 25))  # scaled bit-flips: far and opposed
        rounds.append(x)
    rule, state = ClippedClusteringRule(), None
    for x, (want, kept) in zip(rounds, numpy_clipped_clustering_blades(rounds)):
        step = rule(t(x), state, 1)
        state = step.state
        assert step.metrics["kept_clients"] == len(kept) == 6
        np.testing.assert_allclose(step.update.numpy(), want, rtol=0, atol=1e-12)


def test_largest_cluster_breaks_ties_by_the_most_central_row():
    d = C.cosine_distances(t([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])).numpy()
    labels = np.array([1, 1, 0, 0])
    # Rows 0 and 1, rows 2 and 3: mirror images, equal totals; the lowest index (row 0) decides
    assert C.largest_cluster(labels, d).tolist() == [True, True, False, False]
    assert C.largest_cluster(np.array([-1, -1, -1, -1]), d).all()
    assert C.largest_cluster(np.array([-1, 0, 0, 1]), d).tolist() == [False, True, True, False]


# ------------------------------------------------------------------------------ argument checks
def test_argument_errors():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"floor\(c · f\) = 4 rows per iteration and needs fewer than n=4"):
        C.dnc(x, 4)
    with pytest.raises(ValueError, match="c must be a finite number >= 0"):
        C.dnc(x, 1, c=-1.0)
    with pytest.raises(ValueError, match="subsample must lie in"):
        DnCRule(subsample=0)
    with pytest.raises(ValueError, match="iterations must lie in"):
        DnCRule(iterations=0)
    with pytest.raises(ValueError, match="f must lie in"):
        DnCRule(f=-2)
    with pytest.raises(ValueError, match="lower <= 1 <= upper"):
        SignGuardRule(lower=1.5)
    with pytest.raises(ValueError, match="lower <= 1 <= upper"):
        SignGuardRule(upper=0.5)
    with pytest.raises(ValueError, match=r"sign_fraction must lie in \(0, 1\]"):
        SignGuardRule(sign_fraction=1.5)
    with pytest.raises(ValueError, match="sign_fraction must be a finite number > 0"):
        SignGuardRule(sign_fraction=0.0)
    with pytest.raises(ValueError, match="clustering must be one of"):
        SignGuardRule(clustering="dbscan")
    with pytest.raises(ValueError, match=r"fraction \(of the coordinates"):
        C.signguard(x, fraction=2.0)
    with pytest.raises(ValueError, match="linkage must be one of"):
        ClippedClusteringRule(linkage="ward")
    with pytest.raises(ValueError, match="max_norm must be a finite number > 0"):
        ClippedClusteringRule(max_norm=0.0)
    with pytest.raises(ValueError, match="history must lie in"):
        ClippedClusteringRule(history=-1)
    with pytest.raises(ValueError, match="threshold must be a finite number >= 0"):
        C.clipped_clustering(x, -1.0)
    with pytest.raises(ValueError, match="x must have shape"):
        C.dnc(torch.zeros(3), 0)
    with pytest.raises(ValueError, match="takes no parameter 'tau' .it takes f, subsample, iterations, c."):
        DnCRule.from_config(RunConfig(strategy="dnc", rule_params="tau=1"))
    rule = DnCRule.from_config(RunConfig(strategy="dnc", rule_params="subsample=50,iterations=2,c=1.5,f=1", seed=3))
    assert (rule.f, rule.subsample, rule.iterations, rule.c, rule.seed) == (1, 50, 2, 1.5, 3)


def test_the_dnc_rule_caps_f_to_leave_a_row():
    x = torch.randn(3, 5)
    step = DnCRule(f=5)(x, None, 1)
    assert step.metrics == {"dnc_f": 2, "kept_clients": 1}
    assert DnCRule(f=5, c=0.0)(x, None, 1).metrics["kept_clients"] == 3


# ------------------------------------------------------------------------------ determinism by seed
def test_dnc_and_signguard_draws_follow_seed_and_round():
    # No structure to find: which rows look worst (DnC) or share their signs (SignGuard) depends
    # on the coordinates drawn
    x = torch.randn(10, 400, generator=torch.Generator().manual_seed(0))
    for rule_class, kwargs in ((DnCRule, {"subsample": 8, "iterations": 2, "f": 3}), (SignGuardRule, {"sign_fraction": 0.02})):
        a, b = rule_class(seed=1, **kwargs), rule_class(seed=1, **kwargs)
        assert torch.equal(a(x.clone(), None, 3).update, b(x.clone(), None, 3).update)
        updates = {tuple(rule_class(seed=s, **kwargs)(x.clone(), None, r).update.tolist()) for s in range(4) for r in range(3)}
        assert len(updates) > 1, rule_class  # the draws differ with seed and round
    # the generators the rules draw from are their own stream (tests/test_rng_streams.py pins them)
    assert DnCRule(seed=1).generator(2, "cpu").initial_seed() != SignGuardRule(seed=1).generator(2, "cpu").initial_seed()


def test_signguard_kmeans_is_deterministic():
    x = torch.randn(30, 200, generator=torch.Generator().manual_seed(0))
    outs = [SignGuardRule()(x.clone(), None, 1).update for _ in range(3)]
    assert all(torch.equal(outs[0], o) for o in outs[1:])


# ------------------------------------------------------------------------------ scale safety
MAGNITUDES = [1e3, 1e20, 1e30, 1e36, 3e38]


def _hostile(magnitude: float, seed: int = 0, n: int = 11, f: int = 2, d: int = 20) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    honest = 0.1 + 0.05 * torch.randn(n - f, d, generator=gen)
    signs = torch.where(torch.rand(f, d, generator=gen) < 0.5, -1.0, 1.0)
    outliers = (magnitude * signs.double() * (0.5 + 0.5 * torch.rand(f, d, generator=gen).double())).float()
    outliers[1] = -outliers[1].abs()  # one of them on the negative side everywhere
    return torch.cat([outliers, honest])


def _rule(name: str):
    return RULES[name](f=2) if name == "dnc" else RULES[name]()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", range(3))
def test_far_rows_cannot_move_the_rules(name, seed):
    rule = _rule(name)
    base = rule(_hostile(MAGNITUDES[0], seed), None, 1)
    honest = _hostile(1.0, seed)[2:]
    # (clipped clustering keeps the random-sign outlier of seed 1, at cosine about 0 to all, in
    # the honest cluster, clipped to the median norm: that is the rule, at every magnitude alike)
    assert float((base.update - honest.mean(dim=0)).abs().max()) < 0.1
    for magnitude in MAGNITUDES[1:]:
        step = rule(_hostile(magnitude, seed), None, 1)
        assert step.update.dtype == torch.float32 and bool(torch.isfinite(step.update).all()), magnitude
        assert step.state is None or bool(torch.isfinite(step.state).all())
        torch.testing.assert_close(step.update, base.update, rtol=0, atol=1e-6)
        assert step.metrics["kept_clients"] == base.metrics["kept_clients"]


def test_clipped_clustering_history_of_far_norms_stays_finite():
    rule, state = ClippedClusteringRule(), None
    for r in range(1, 5):
        step = rule(_hostile(3e38, seed=r), state, r)
        state = step.state
        assert bool(torch.isfinite(step.update).all()) and bool(torch.isfinite(state).all())
    assert step.metrics["clip_threshold"] < 10.0  # the honest majority's norms set the median


@pytest.mark.parametrize("name", NAMES)
def test_all_far_rows_still_give_a_finite_answer(name):
    x = _hostile(3e38, n=5, f=2)
    x[2:] = x[:1].expand(3, -1) * 0.9  # every row far out: nothing to protect, but no overflow
    step = _rule(name)(x, None, 1)
    assert bool(torch.isfinite(step.update).all())


@pytest.mark.parametrize("name", NAMES)
def test_float64_input(name):
    x = _hostile(1e30)
    out32 = _rule(name)(x.clone(), None, 1).update
    out64 = _rule(name)(x.double(), None, 1).update
    assert out64.dtype == torch.float64 and bool(torch.isfinite(out64).all())
    torch.testing.assert_close(out64.float(), out32, rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------ plugin and runs
def test_plugin_classes_take_the_rules_parameters():
    from fedrobust.plugin import legacy, message

    strategy = legacy.FedDnC(f=1, subsample=100, iterations=2, fraction_fit=0.5)
    assert strategy.aggregator.rule == DnCRule(f=1, subsample=100, iterations=2) and strategy.fraction_fit == 0.5
    assert "subsample=100" in repr(strategy)
    assert message.FedSignGuard(clustering="meanshift").aggregator.rule == SignGuardRule(clustering="meanshift")
    assert legacy.FedClippedClustering(linkage="single").aggregator.rule == ClippedClusteringRule(linkage="single")
    assert {legacy.PLUGINS[n].__name__ for n in NAMES} == {"FedDnC", "FedSignGuard", "FedClippedClustering"}


@pytest.mark.parametrize("name", NAMES)
def test_in_process_run_ends_finite(name):
    from fedrobust.run.inprocess import run_inprocess

    params = {"dnc": "subsample=500,iterations=2", "signguard": "sign_fraction=0.5", "clipped-clustering": "history=20"}
    cfg = RunConfig(strategy=name, dataset="digits", model="logistic", num_clients=8, clients_per_round=8, rounds=3,
                    attack="bit-flip", byzantine_fraction=0.2, device="cpu", lr=0.1, rule_params=params[name])
    seen = {}
    results = run_inprocess(cfg, after_round=lambda s, r: seen.__setitem__("x", s.x.clone()))
    assert bool(torch.isfinite(seen["x"]).all())
    assert len(results["rounds"]) == 3
    assert all(0 < r["kept_clients"] <= 8 for r in results["rounds"])
    if name == "dnc":
        assert all(r["dnc_f"] == 1 for r in results["rounds"])  # floor(0.2 * 8)
