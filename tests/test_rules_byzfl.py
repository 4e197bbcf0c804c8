"""The classical rules against ByzFL 0.0.11's aggregators on identical inputs (float64 numpy).

Conventions matched (also in the rules' docstrings and docs/strategies.md):

- ``Median``: numpy's median (mean of the two middle values for an even n) — fedrobust's too.
- ``TrMean(f)`` drops f values from each side; fedrobust's ``trimmed_mean(beta)`` drops
  ``floor(beta · n)``: beta = f / n.
- ``Krum(f)`` scores a row by its n − f − 1 nearest other rows; Blanchard et al. (2017), and
  fedrobust, by n − f − 2: ByzFL's f is fedrobust's f + 1. ``MultiKrum(f)`` averages the n − f
  best of those scores: fedrobust's ``krum(x, f - 1, m = n - f)``.
- ``GeometricMedian(nu, T)`` runs T smoothed Weiszfeld steps from 0; with many steps and a tiny
  ``nu`` it converges to the geometric median that fedrobust computes to ``gm-tol``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedrobust.aggregators import coordinate_median, geometric_median, krum, trimmed_mean

from _byzfl import load_byzfl

BYZFL = load_byzfl()


def rows(n, d=8, seed=0):
    x = np.random.default_rng(seed).normal(0.2, 1.0, size=(n, d))
    x[: max(1, n // 5)] *= -30.0  # a minority far away
    return x


@pytest.mark.parametrize("n", [5, 10, 11])
def test_median(n):
    x = rows(n)
    assert np.allclose(coordinate_median(torch.from_numpy(x)).numpy(), BYZFL.agg.Median()(x.copy()), rtol=0, atol=1e-12)


@pytest.mark.parametrize("n,f", [(10, 2), (11, 3), (7, 1), (10, 0)])
def test_trimmed_mean_with_beta_f_over_n(n, f):
    x = rows(n)
    ours = trimmed_mean(torch.from_numpy(x), f / n + 1e-9).numpy()
    assert np.allclose(ours, BYZFL.agg.TrMean(f=f)(x.copy()), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n,f", [(10, 2), (11, 3), (9, 1)])
def test_krum_with_f_one_lower(n, f):
    x = rows(n, seed=n + f)
    assert np.allclose(krum(torch.from_numpy(x), f - 1).numpy(), BYZFL.agg.Krum(f=f)(x.copy()), rtol=1e-12)


@pytest.mark.parametrize("n,f", [(10, 2), (11, 3), (9, 1)])
def test_multi_krum_with_f_one_lower_and_n_minus_f_rows(n, f):
    x = rows(n, seed=n * f)
    ours = krum(torch.from_numpy(x), f - 1, m=n - f).numpy()
    assert np.allclose(ours, BYZFL.agg.MultiKrum(f=f)(x.copy()), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", [5, 10, 20])
def test_geometric_median_at_convergence(n):
    x = rows(n, d=6, seed=n)
    theirs = BYZFL.agg.GeometricMedian(nu=1e-12, T=5000)(x.copy())
    ours = geometric_median(torch.from_numpy(x), tol=1e-12, max_iter=5000).median.numpy()
    assert np.allclose(ours, theirs, rtol=1e-6, atol=1e-6)
