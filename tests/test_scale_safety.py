"""Scale safety: no finite values a minority of rows sends may change a robust rule's answer.

Every client vector is untrusted and may hold any finite float32 value (up to 3.4e38). Squares of
such values overflow float32 and, in a Gram matrix centred on the mean row, drown the inliers'
distances in rounding. These tests put a minority of outlier rows at magnitudes from 1e3 to 3e38
and check that every rule returns what it returns at 1e3 (and, for the geometric median, what an
exact float64 Weiszfeld iteration returns).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedrobust.aggregators import (
    block_geometric_median,
    column_scores,
    coordinate_median,
    geometric_median,
    krum,
    krum_scores,
    norm_trim,
    trimmed_mean,
    weiszfeld_weights,
)

MAGNITUDES = [1e3, 1e8, 1e15, 1e20, 1e30, 1e36, 3e38]
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _inputs(seed: int, n: int, f: int, d: int, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Honest rows (n - f of them) and outlier directions (f rows, 0.5 <= |entry| <= 1)."""
    gen = torch.Generator().manual_seed(seed)
    honest = 0.05 * torch.randn(n - f, d, generator=gen)
    if kind == "bit-flip":  # -s * g of honest rows, as the scaled bit-flip attack sends
        direction = -honest[:f]
    elif kind == "same":  # colluders all send one vector
        direction = torch.randn(1, d, generator=gen).expand(f, d)
    else:  # independent noise
        direction = torch.randn(f, d, generator=gen)
    direction = direction / direction.abs().amax(dim=1, keepdim=True)
    # every entry at least half the row's largest: at 1e3 the outliers are far in every coordinate too
    return honest, direction.sign() * (0.5 + 0.5 * direction.abs())


def _stack(honest: torch.Tensor, direction: torch.Tensor, magnitude: float) -> torch.Tensor:
    x = torch.cat([(magnitude * direction.double()).float(), honest])
    assert bool(torch.isfinite(x).all()) and float(x.abs().max()) <= 3.4e38
    return x


def _reference_gm(x: torch.Tensor, iterations: int = 3000) -> np.ndarray:
    """Weiszfeld's iteration in float64 from the coordinate median: the exact geometric median
    (float64 holds every square of a float32 value). The rows are divided by the inliers' scale
    first and the answer multiplied back, so the stopping threshold is relative."""
    a = x.double().numpy()
    scale = float(np.median(np.abs(a)))
    a = a / scale
    y = np.median(a, axis=0)
    for _ in range(iterations):
        dist = np.maximum(np.linalg.norm(a - y, axis=1), 1e-12)
        w = 1.0 / dist
        y_new = (w[:, None] * a).sum(axis=0) / w.sum()
        if np.linalg.norm(y_new - y) <= 1e-13 * np.median(dist):
            y = y_new
            break
        y = y_new
    return y * scale


def _spread(honest: torch.Tensor) -> float:
    """The inliers' typical distance to their centre: the unit of every tolerance below."""
    return float((honest - honest.mean(dim=0)).norm(dim=1).median())


cases = st.tuples(
    st.integers(0, 10_000),
    st.sampled_from([(10, 2), (10, 4), (13, 5), (7, 1)]),
    st.sampled_from([3, 50, 300]),  # d = 1 with an even n has no unique median
    st.sampled_from(["bit-flip", "same", "noise"]),
)


@SETTINGS
@given(case=cases, magnitude=st.sampled_from(MAGNITUDES[1:]), method=st.sampled_from(["gram", "direct"]))
def test_geometric_median_ignores_how_far_the_outliers_are(case, magnitude, method):
    seed, (n, f), d, kind = case
    honest, direction = _inputs(seed, n, f, d, kind)
    at_1e3 = geometric_median(_stack(honest, direction, 1e3), method=method, tol=1e-10).median
    x = _stack(honest, direction, magnitude)
    gm = geometric_median(x, method=method, tol=1e-10).median
    assert bool(torch.isfinite(gm).all())
    spread = _spread(honest)
    # Far outliers pull the median by a unit vector each, whatever their distance: the answer
    # converges as they move away; 1e3 is already within a percent of the limit.
    assert float((gm - at_1e3).norm()) <= 2e-2 * spread
    reference = _reference_gm(x)
    assert float(np.linalg.norm(gm.double().numpy() - reference)) <= 1e-4 * spread


@pytest.mark.parametrize("magnitude", MAGNITUDES)
@pytest.mark.parametrize("n,f", [(10, 2), (10, 4), (300, 100)])
def test_geometric_median_matches_float64_weiszfeld(magnitude, n, f):
    honest, direction = _inputs(7, n, f, 200, "bit-flip")
    x = _stack(honest, direction, magnitude)
    gm = geometric_median(x, tol=1e-10).median
    reference = _reference_gm(x)
    assert float(np.linalg.norm(gm.double().numpy() - reference)) <= 1e-4 * _spread(honest)


@SETTINGS
@given(case=cases, magnitude=st.sampled_from(MAGNITUDES[1:]))
def test_krum_and_norm_trim_choose_as_at_1e3(case, magnitude):
    seed, (n, f), d, kind = case
    honest, direction = _inputs(seed, n, f, d, kind)
    low, x = _stack(honest, direction, 1e3), _stack(honest, direction, magnitude)
    if 2 * f + 2 < n:
        assert torch.equal(krum(x, f), krum(low, f))
        assert torch.equal(krum(x, f, m=n - 2 * f), krum(low, f, m=n - 2 * f))
        assert int(krum_scores(x, f).argmin()) >= f  # an honest row
    kept = norm_trim(x, f / n)
    assert torch.equal(kept, norm_trim(low, f / n))
    assert bool((kept >= f).all())


@SETTINGS
@given(case=cases, magnitude=st.sampled_from(MAGNITUDES[1:]))
def test_coordinatewise_rules_are_unmoved(case, magnitude):
    seed, (n, f), d, kind = case
    honest, direction = _inputs(seed, n, f, d, kind)
    low, x = _stack(honest, direction, 1e3), _stack(honest, direction, magnitude)
    assert torch.equal(coordinate_median(x), coordinate_median(low))
    beta = (f + 0.5) / n  # trims f (and no more) from each side
    if beta < 0.5:
        assert torch.equal(trimmed_mean(x, beta), trimmed_mean(low, beta))


@SETTINGS
@given(case=cases, magnitude=st.sampled_from(MAGNITUDES[1:]), selection=st.sampled_from(["sample", "top-k"]))
def test_block_geometric_median_and_its_memory(case, magnitude, selection):
    seed, (n, f), d, kind = case
    honest, direction = _inputs(seed, n, f, max(d, 20), kind)
    k = max(1, honest.shape[1] // 4)
    results = []
    for m in (1e3, magnitude):
        step = block_geometric_median(
            _stack(honest, direction, m), k, generator=torch.Generator().manual_seed(1),
            selection=selection, memory="mean", memory_weights="gm", tol=1e-10,
        )
        assert bool(torch.isfinite(step.update).all()) and bool(torch.isfinite(step.memory).all())
        results.append(step)
    spread = _spread(honest)
    # Outlier rows dominate the column scores alike at every magnitude: the same block is drawn.
    assert torch.equal(results[0].indices, results[1].indices)
    assert float((results[0].update - results[1].update).norm()) <= 2e-2 * spread
    # The memory averages the residual rows with the GM's weights: far rows get almost none of it.
    assert float(results[1].memory.norm()) <= 2.0 * float(honest.norm(dim=1).max())


def test_column_scores_keep_their_ratios_past_float32():
    x = torch.tensor([[3e38, 1e38, 0.0], [1e20, 0.0, 1.0]])
    s = column_scores(x)
    assert bool(torch.isfinite(s).all())
    exact = x.double().pow(2).sum(0)
    assert float(s[0] / s[1]) == pytest.approx(float(exact[0] / exact[1]), rel=1e-6)


def test_weiszfeld_weights_give_far_rows_no_say():
    d = torch.tensor([0.5, 0.4, 0.6, 1e31, 3e38], dtype=torch.float64)
    w = weiszfeld_weights(d)
    assert float(w[3:].sum()) < 1e-20


def _exact_krum_scores(x: torch.Tensor, f: int) -> torch.Tensor:
    a = x.double()
    dist = torch.cdist(a, a).pow(2)
    dist.fill_diagonal_(float("inf"))
    return torch.topk(dist, x.shape[0] - f - 2, dim=1, largest=False).values.sum(dim=1)


@pytest.mark.parametrize("seed", range(20))
def test_float32_krum_is_exact_krum_on_outlier_inputs(seed):
    """20% outliers at -100x (n = 10, d = 1e5, float32): centring the Gram matrix on the mean row
    (which the outliers drag away) once made the scores wrong by 3.5e-3 and the choice differ from
    exact Krum in 9 of 20 seeds."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(10, 100_000, generator=gen)
    x[:2] = -100 * x[:2]
    exact = _exact_krum_scores(x, 2)
    scores = krum_scores(x, 2)
    assert float(((scores - exact).abs() / exact).max()) < 2e-5
    assert int(scores.argmin()) == int(exact.argmin())



@pytest.mark.parametrize("method", [
    pytest.param("direct", marks=pytest.mark.xfail(strict=True, reason=(
        "known limit, found by the property test above on 2026-12-06: the direct Weiszfeld path stops on its "
        "rounding-level step rule while it still converges slowly (5 colluders of 13 at 1e8)"))),
    "gram",  # the default below 257 rows: within the bound
])
def test_geometric_median_near_breakdown_reaches_the_reference(method):
    honest, direction = _inputs(1824, 13, 5, 3, "same")
    x = _stack(honest, direction, 1e8)
    gm = geometric_median(x, method=method, tol=1e-10).median
    assert float(np.linalg.norm(gm.double().numpy() - _reference_gm(x))) <= 1e-4 * _spread(honest)
