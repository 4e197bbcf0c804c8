"""Cross-check of the omniscient attacks against ByzFL 0.0.11 (its attack and aggregator modules).

The module files come from ``tests/_byzfl.py`` (skipped without ``byzfl``).

Conventions matched below (also in docs/attacks.md):

- ALIE: ByzFL sends μ + τ·σ, fedrobust μ − z·σ, so ByzFL's τ is fedrobust's −z; both use σ with
  Bessel's correction (ByzFL: ``var(ddof=1)``). ByzFL has no z_max formula (fixed τ = 1.5).
- IPM: ByzFL's ``tau`` is fedrobust's ε (ByzFL's default 2, fedrobust's 0.1).
- Mimic: ByzFL's ``epsilon`` is fedrobust's ``target`` (ByzFL raises when it is out of range,
  fedrobust counts it modulo the rows seen).
- Optimal variants: ByzFL applies its ``Clipping`` pre-aggregation by default (disabled here with
  ``pre_agg_list=[]``), searches τ >= 0 upwards from 0 in steps of 10 and does not bound it;
  fedrobust searches [0.01, 100] on a log grid and refines (see fedrobust.attacks.optimal). The
  searches differ, so the check is that fedrobust's τ moves the aggregate at least as far, and
  that ByzFL's answer is a point of fedrobust's family b(τ).
- ByzFL casts torch inputs to float32; the exact comparisons use float64 numpy inputs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedrobust.aggregators.coordinate import coordinate_median
from fedrobust.aggregators.krum import krum
from fedrobust.attacks import AdversaryView, alie_z, get_attack

from _byzfl import load_byzfl

BYZFL = load_byzfl()


def honest_rows(h: int = 9, L: int = 7, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.3, 1.0, size=(h, L))


def craft(name: str, x: np.ndarray, n: int = 11, f: int = 2, aggregate=None, **params) -> np.ndarray:
    view = AdversaryView(n=n, f=f, aggregate=aggregate)
    return get_attack(name, **params).craft(torch.from_numpy(x), view)[0].numpy()


@pytest.mark.parametrize("tau", [1.5, 0.3, -2.0])
def test_alie_matches_with_tau_equal_to_minus_z(tau):
    x = honest_rows()
    theirs = BYZFL.attacks.ALittleIsEnough(tau=tau)(x)
    assert np.allclose(craft("alie", x, z=-tau), theirs, rtol=1e-12, atol=1e-12)


def test_alie_papers_z_is_byzfls_tau_minus_z():
    x = honest_rows()
    z = alie_z(20, 8)
    theirs = BYZFL.attacks.ALittleIsEnough(tau=-z)(x)
    assert np.allclose(craft("alie", x, n=20, f=8), theirs, rtol=1e-12, atol=1e-12)


def test_alie_float32_torch_path_agrees():
    x = honest_rows().astype(np.float32)
    theirs = BYZFL.attacks.ALittleIsEnough(tau=1.5)(torch.from_numpy(x)).numpy()
    assert np.allclose(craft("alie", x, z=-1.5), theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("tau", [0.1, 2.0, 100.0])
def test_ipm_matches_with_tau_equal_to_epsilon(tau):
    x = honest_rows(seed=1)
    theirs = BYZFL.attacks.InnerProductManipulation(tau=tau)(x)
    assert np.allclose(craft("ipm", x, epsilon=tau), theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k", [0, 4, 8])
def test_mimic_matches_with_epsilon_equal_to_target(k):
    x = honest_rows(seed=2)
    assert np.array_equal(craft("mimic", x, target=k), BYZFL.attacks.Mimic(epsilon=k)(x))


def fedrobust_median(rows: torch.Tensor) -> torch.Tensor:
    return coordinate_median(rows)


def fedrobust_krum(rows: torch.Tensor) -> torch.Tensor:
    return krum(rows, f=2)


def distance(x: np.ndarray, b: np.ndarray, f: int, aggregate) -> float:
    rows = torch.from_numpy(np.vstack([x, np.tile(b, (f, 1))]))
    return float(torch.linalg.vector_norm(aggregate(rows).double() - torch.from_numpy(x.mean(axis=0))))


@pytest.mark.parametrize(
    ("ours", "theirs"), [(fedrobust_median, lambda: BYZFL.agg.Median()), (fedrobust_krum, lambda: BYZFL.agg.Krum(f=2))],
    ids=["median", "krum"],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_optimal_alie_does_at_least_as_well_as_byzfls(ours, theirs, seed):
    x = honest_rows(seed=seed)
    mu, sd = x.mean(axis=0), x.std(axis=0, ddof=1)
    # ByzFL searches μ + τσ, τ >= 0; both rules are odd (rule(−X) = −rule(X)), so ByzFL on −x,
    # negated, is its search in fedrobust's direction μ − zσ
    attack = BYZFL.attacks.Optimal_ALittleIsEnough(agg=theirs(), pre_agg_list=[], f=2)
    byzfl_b = -attack(-x)
    tau = float(np.mean((mu - byzfl_b) / sd))
    assert tau >= 0 and np.allclose(byzfl_b, mu - tau * sd, rtol=1e-9, atol=1e-9)
    assert np.allclose(craft("alie", x, z=tau), byzfl_b, rtol=1e-9, atol=1e-9)  # the same family
    our_b = craft("optimal-alie", x, aggregate=ours)
    assert distance(x, our_b, 2, ours) >= distance(x, byzfl_b, 2, ours) - 1e-9


@pytest.mark.parametrize(
    ("ours", "theirs"), [(fedrobust_median, lambda: BYZFL.agg.Median()), (fedrobust_krum, lambda: BYZFL.agg.Krum(f=2))],
    ids=["median", "krum"],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_optimal_ipm_does_at_least_as_well_as_byzfls(ours, theirs, seed):
    x = honest_rows(seed=seed)
    attack = BYZFL.attacks.Optimal_InnerProductManipulation(agg=theirs(), pre_agg_list=[], f=2)
    byzfl_b = attack(x)
    mu = x.mean(axis=0)
    eps = float(-(byzfl_b @ mu) / (mu @ mu))
    assert np.allclose(byzfl_b, -eps * mu, rtol=1e-9, atol=1e-9)
    our_b = craft("optimal-ipm", x, aggregate=ours)
    assert distance(x, our_b, 2, ours) >= distance(x, byzfl_b, 2, ours) - 1e-9


def test_fedrobust_rules_agree_with_byzfls_on_these_inputs():
    """The optimal-* comparison scores both answers with fedrobust's rules; they are ByzFL's too."""
    x = honest_rows(h=11)
    rows = torch.from_numpy(x)
    assert np.allclose(fedrobust_median(rows).numpy(), BYZFL.agg.Median()(x), rtol=1e-12)
    assert np.allclose(fedrobust_krum(rows).numpy(), BYZFL.agg.Krum(f=2)(x), rtol=1e-12)
