"""The omniscient (colluding) attacks against their papers' formulas, computed here independently
in numpy: alie, ipm, min-max, min-sum, fang, mimic, optimal-alie, optimal-ipm."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from fedrobust.aggregators.krum import krum
from fedrobust.attacks import ATTACKS, AdversaryView, alie_z, get_attack
from fedrobust.attacks.optimal import line_search

OMNISCIENT = ["alie", "ipm", "min-max", "min-sum", "fang", "mimic", "optimal-alie", "optimal-ipm"]
RANDOM = ["fang"]


def honest_rows(h: int = 6, L: int = 5, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.tensor(rng.normal(0.5, 1.0, size=(h, L)), dtype=dtype)


def mean_agg(rows: torch.Tensor) -> torch.Tensor:
    return rows.mean(dim=0)


def median_agg(rows: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.median(rows.double().numpy(), axis=0))


def view(n: int = 8, f: int = 2, seed: int | None = 0, aggregate=mean_agg) -> AdversaryView:
    gen = None if seed is None else torch.Generator().manual_seed(seed)
    return AdversaryView(n=n, f=f, aggregate=aggregate, generator=gen)


# ------------------------------------------------------------------------------------- every attack


def test_the_omniscient_attacks_are_registered():
    assert sorted(n for n, c in ATTACKS.items() if c.kind == "omniscient") == sorted(OMNISCIENT)


@pytest.mark.parametrize("name", OMNISCIENT)
@pytest.mark.parametrize("f", [1, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_and_finiteness(name, f, dtype):
    honest = honest_rows(dtype=dtype)
    out = get_attack(name).craft(honest, view(n=6 + f, f=f))
    assert out.shape == (f, 5) and out.dtype == dtype and bool(torch.isfinite(out).all())


@pytest.mark.parametrize("name", sorted(set(OMNISCIENT) - set(RANDOM)))
def test_float64_and_float32_agree(name):
    h64 = honest_rows(dtype=torch.float64)
    a = get_attack(name).craft(h64, view())
    b = get_attack(name).craft(h64.float(), view())
    assert torch.allclose(a, b.double(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", OMNISCIENT)
def test_deterministic_for_a_seeded_generator(name):
    honest = honest_rows()
    a = get_attack(name).craft(honest, view(seed=3))
    b = get_attack(name).craft(honest, view(seed=3))
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", OMNISCIENT)
def test_only_the_rows_given_are_seen(name):
    """Partial participation: a different set of honest rows gives different crafted rows."""
    honest = honest_rows(h=6)
    params = {"target": 0} if name == "mimic" else {}
    full = get_attack(name, **params).craft(honest, view(n=8))
    part = get_attack(name, **params).craft(honest[1:5], view(n=6))
    assert not torch.allclose(full, part)
    # and the rows not given play no part: changing them leaves the output alone
    other = honest.clone()
    other[5] += 100.0
    assert torch.equal(get_attack(name, **params).craft(other[1:5], view(n=6)), part)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("alie", {"z": float("inf")}, r"z must be a finite number"),
        ("ipm", {"epsilon": 0.0}, r"epsilon must be a finite number > 0"),
        ("fang", {"b": 1.0}, r"b must be a finite number > 1, got 1.0"),
        ("fang", {"b": 0.5}, r"b must be a finite number > 1"),
        ("mimic", {"target": -1}, r"target must lie in \[0, inf\]"),
        ("min-max", {"direction": "up"}, r"direction must be one of unit, std, sign, got 'up'"),
        ("min-sum", {"tol": 0.0}, r"tol must lie in \(0, 1\)"),
        ("min-max", {"gamma_init": -1.0}, r"gamma_init must be a finite number > 0"),
        ("optimal-alie", {"low": 0.0}, r"low must be a finite number > 0"),
        ("optimal-ipm", {"low": 2.0, "high": 1.0}, r"high must be > low, got low=2.0, high=1.0"),
        ("optimal-ipm", {"grid": 1}, r"grid must lie in \[2, inf\]"),
        ("optimal-alie", {"refine": -1}, r"refine must lie in \[0, inf\]"),
    ],
)
def test_bad_params_name_the_param_and_range(name, params, message):
    with pytest.raises(ValueError, match=rf"attack '{name}': {message}"):
        get_attack(name, **params)


@pytest.mark.parametrize(("name", "params"), [("alie", {"z": "big"}), ("mimic", {"target": 1.5})])
def test_wrongly_typed_params_raise_type_error(name, params):
    with pytest.raises(TypeError, match=rf"attack '{name}': {next(iter(params))} must be"):
        get_attack(name, **params)


def test_default_params_are_reported():
    assert get_attack("alie").params == {"z": None}
    assert get_attack("fang").params == {"b": 2.0}
    assert get_attack("mimic").params == {"target": 0}
    assert get_attack("min-max").params == {"direction": "std", "gamma_init": 10.0, "tol": 1e-5}
    assert get_attack("optimal-ipm").params == {"low": 0.01, "high": 100.0, "grid": 13, "refine": 24}


# --------------------------------------------------------------------------------------------- ALIE


def test_alie_z_is_the_papers_quantile():
    # s = floor(n/2 + 1) - f; z = Phi^-1((n - s)/n)
    assert alie_z(10, 2) == pytest.approx(stats.norm.ppf(0.6), abs=1e-12)
    assert alie_z(10, 2) == pytest.approx(0.2533, abs=1e-4)
    assert alie_z(10, 4) == pytest.approx(stats.norm.ppf(0.8), abs=1e-12)
    assert alie_z(10, 4) == pytest.approx(0.8416, abs=1e-4)
    assert alie_z(10, 1) == 0.0  # s = 5: the median is already swayed by nothing
    # f >= floor(n/2 + 1): s clamped to 1, z = Phi^-1((n - 1)/n), finite
    for f in (6, 7, 10):
        assert alie_z(10, f) == pytest.approx(stats.norm.ppf(0.9), abs=1e-12)


def test_alie_is_mean_minus_z_std_by_hand():
    honest = honest_rows(h=7, L=4, seed=1)
    x = honest.double().numpy()
    mu, sd = x.mean(axis=0), x.std(axis=0, ddof=1)
    out = get_attack("alie", z=1.5).craft(honest, view(n=10, f=3)).double().numpy()
    assert np.allclose(out, np.tile(mu - 1.5 * sd, (3, 1)), atol=1e-6)
    out = get_attack("alie").craft(honest, view(n=10, f=3)).double().numpy()
    z = stats.norm.ppf((10 - (math.floor(10 / 2 + 1) - 3)) / 10)
    assert np.allclose(out[0], mu - z * sd, atol=1e-6)


def test_alie_and_ipm_point_the_papers_way():
    """Fails if either sign were flipped: ALIE sits below the mean, IPM against it."""
    honest = torch.tensor([[1.0, 2.0], [3.0, 6.0], [2.0, 4.0]])
    mu = honest.mean(dim=0)
    alie = get_attack("alie", z=1.0).craft(honest, view(n=5, f=2))[0]
    assert (alie < mu).all()
    assert torch.allclose(alie, torch.tensor([1.0, 2.0]))  # μ − 1·σ = (2, 4) − (1, 2)
    ipm = get_attack("ipm", epsilon=0.5).craft(honest, view(n=5, f=2))[0]
    assert float(ipm @ mu) < 0 and torch.allclose(ipm, torch.tensor([-1.0, -2.0]))


def test_ipm_is_minus_epsilon_mean_by_hand():
    honest = honest_rows()
    out = get_attack("ipm", epsilon=3.0).craft(honest, view())
    assert np.allclose(out.numpy(), -3.0 * honest.double().numpy().mean(axis=0), atol=1e-6)


# ------------------------------------------------------------------------------------ min-max / sum


def closed_form_gamma(x: np.ndarray, p: np.ndarray, kind: str) -> float:
    """The exact γ* of the paper's constraints (quadratics in γ), solved by hand."""
    mu = x.mean(axis=0)
    pp = p @ p
    if kind == "min-sum":  # Σ_i ‖μ + γp − g_i‖² = Σ_i ‖μ − g_i‖² + h γ² ‖p‖²
        return float(np.sqrt(max(((x - mu) ** 2).sum(axis=1)) / pp))
    D = max(((x[i] - x[j]) ** 2).sum() for i in range(len(x)) for j in range(len(x)))
    roots = []
    for g in x:
        a, d = (mu - g) @ p, ((mu - g) ** 2).sum()
        roots.append((-a + np.sqrt(a * a - pp * (d - D))) / pp)
    return float(min(roots))


def direction_by_hand(x: np.ndarray, direction: str) -> np.ndarray:
    mu = x.mean(axis=0)
    return {"unit": -mu / np.linalg.norm(mu), "std": -x.std(axis=0, ddof=1), "sign": -np.sign(mu)}[direction]


def constraint(x: np.ndarray, b: np.ndarray, kind: str) -> tuple[float, float]:
    """(statistic of b, bound) of the paper's constraint, computed directly."""
    dist = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2))
    to_b = np.sqrt(((x - b) ** 2).sum(axis=1))
    if kind == "min-max":
        return float(to_b.max()), float(dist.max())
    return float((to_b**2).sum()), float((dist**2).sum(axis=1).max())


@pytest.mark.parametrize("kind", ["min-max", "min-sum"])
@pytest.mark.parametrize("direction", ["unit", "std", "sign"])
@pytest.mark.parametrize("scale", [1.0, 1e-6, 1e4])
def test_gamma_is_the_largest_that_keeps_the_constraint(kind, direction, scale):
    honest = honest_rows(h=7, L=6, seed=2, dtype=torch.float64) * scale
    attack = get_attack(kind, direction=direction)
    gamma = attack.gamma(honest)
    x = honest.numpy()
    p = direction_by_hand(x, direction)
    exact = closed_form_gamma(x, p, kind)
    assert exact * (1 - 2 * attack.tol) <= gamma <= exact * (1 + 1e-9)
    assert gamma * (1 + attack.tol) >= exact * (1 - 1e-9)  # γ + tolerance is past γ*
    stat, bound = constraint(x, x.mean(axis=0) + gamma * p, kind)
    assert stat <= bound * (1 + 1e-9)
    stat, bound = constraint(x, x.mean(axis=0) + gamma * (1 + 3 * attack.tol) * p, kind)
    assert stat > bound
    out = attack.craft(honest, view(n=9, f=2)).numpy()
    assert np.allclose(out, np.tile(x.mean(axis=0) + gamma * p, (2, 1)), rtol=1e-12, atol=1e-12 * scale)


def test_min_max_and_min_sum_small_case_by_hand():
    honest = torch.tensor([[0.0, 0.0], [2.0, 0.0], [1.0, 3.0]], dtype=torch.float64)
    # unit direction −(1, 1)/√2: min-max γ* = √2, min-sum γ* = ‖(1, 3) − μ‖ / ‖p‖ = 2
    assert get_attack("min-max", direction="unit").gamma(honest) == pytest.approx(math.sqrt(2), rel=1e-5)
    assert get_attack("min-sum", direction="unit").gamma(honest) == pytest.approx(2.0, rel=1e-5)
    out = get_attack("min-max", direction="unit").craft(honest, view(n=4, f=1))
    assert torch.allclose(out, torch.tensor([[0.0, 0.0]], dtype=torch.float64), atol=1e-4)


@pytest.mark.parametrize("kind", ["min-max", "min-sum"])
def test_gamma_start_below_or_above_the_answer_finds_the_same(kind):
    honest = honest_rows(h=5, seed=4, dtype=torch.float64)
    gammas = [get_attack(kind, gamma_init=g).gamma(honest) for g in (1e-3, 1.0, 10.0, 1e5)]
    assert max(gammas) - min(gammas) <= 2e-5 * max(gammas)


@pytest.mark.parametrize("kind", ["min-max", "min-sum"])
def test_degenerate_rows_send_the_mean(kind):
    same = torch.ones(4, 3)
    assert get_attack(kind).gamma(same) == 0.0  # σ = 0 and no spread
    assert torch.equal(get_attack(kind).craft(same, view(n=6)), torch.ones(2, 3))
    zero_mean = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    assert get_attack(kind, direction="unit").gamma(zero_mean) == 0.0


# --------------------------------------------------------------------------------------------- Fang


def fang_intervals_by_hand(x: np.ndarray, b: float):
    lo, hi = np.empty(x.shape[1]), np.empty(x.shape[1])
    for j in range(x.shape[1]):
        col = x[:, j]
        if col.mean() < 0:  # s_j = −1: above the maximum
            top = col.max()
            lo[j], hi[j] = (top, b * top) if top > 0 else (top, top / b)
        else:  # s_j = +1: below the minimum
            bottom = col.min()
            lo[j], hi[j] = (bottom / b, bottom) if bottom > 0 else (b * bottom, bottom)
    return lo, hi


@pytest.mark.parametrize("b", [2.0, 3.5])
def test_fang_values_lie_in_the_papers_intervals(b):
    # the four cases: μ<0 with max>0, μ<0 with max<=0, μ>0 with min>0, μ>0 with min<=0
    honest = torch.tensor([[-3.0, -1.0, 1.0, 4.0], [1.0, -2.0, 2.0, -1.0], [-2.0, -4.0, 3.0, 2.0]])
    lo, hi = fang_intervals_by_hand(honest.double().numpy(), b)
    assert lo.tolist() == [1.0, -1.0, 1.0 / b, -b] and hi.tolist() == [b, -1.0 / b, 1.0, -1.0]
    rows = get_attack("fang", b=b).craft(honest, view(n=403, f=400)).double().numpy()
    eps = 1e-6
    assert ((rows >= lo - eps) & (rows <= hi + eps)).all()
    # each row draws its own values, and they fill the interval
    assert len({tuple(r) for r in rows}) == 400
    width = hi - lo
    assert (rows.min(axis=0) - lo < 0.02 * width).all() and (hi - rows.max(axis=0) < 0.02 * width).all()
    # they oppose the honest mean: above every honest value where μ < 0, below where μ > 0
    x = honest.numpy()
    assert (rows[:, :2] >= x[:, :2].max(axis=0) - eps).all() and (rows[:, 2:] <= x[:, 2:].min(axis=0) + eps).all()


def test_fang_generator_state_decides_the_rows():
    honest = honest_rows()
    a = get_attack("fang").craft(honest, view(seed=1))
    assert torch.equal(a, get_attack("fang").craft(honest, view(seed=1)))
    assert not torch.equal(a, get_attack("fang").craft(honest, view(seed=2)))
    gen = torch.Generator().manual_seed(1)
    first = get_attack("fang").craft(honest, AdversaryView(n=8, f=2, generator=gen))
    second = get_attack("fang").craft(honest, AdversaryView(n=8, f=2, generator=gen))
    assert torch.equal(first, a) and not torch.equal(second, a)  # the state advances
    # float32 rows draw float32 uniforms, float64 rows float64 ones: both within the intervals
    assert get_attack("fang").craft(honest.double(), view(seed=1)).dtype == torch.float64


# -------------------------------------------------------------------------------------------- mimic


def test_mimic_copies_the_target_row():
    honest = honest_rows(h=4)
    assert torch.equal(get_attack("mimic").craft(honest, view(n=6)), honest[[0, 0]])
    assert torch.equal(get_attack("mimic", target=2).craft(honest, view(n=6)), honest[[2, 2]])
    assert torch.equal(get_attack("mimic", target=6).craft(honest, view(n=6)), honest[[2, 2]])  # modulo h


# ----------------------------------------------------------------------------------------- optimal-*


def distance(honest: torch.Tensor, row: torch.Tensor, f: int, aggregate) -> float:
    rows = torch.cat([honest, row.reshape(1, -1).expand(f, -1)])
    return float(torch.linalg.vector_norm(aggregate(rows).double() - honest.double().mean(dim=0)))


def by_hand_row(name: str, honest: torch.Tensor, tau: float) -> torch.Tensor:
    x = honest.double()
    if name == "optimal-alie":
        return x.mean(dim=0) - tau * x.std(dim=0)
    return -tau * x.mean(dim=0)


@pytest.mark.parametrize("name", ["optimal-alie", "optimal-ipm"])
def test_optimal_with_a_mean_hits_the_top_of_the_range(name):
    honest = honest_rows()
    tau, value = get_attack(name).search(honest, view(aggregate=mean_agg))
    assert tau == 100.0
    assert value == pytest.approx(distance(honest, by_hand_row(name, honest, 100.0), 2, mean_agg), rel=1e-6)
    tau, _ = get_attack(name, low=0.5, high=3.0).search(honest, view(aggregate=mean_agg))
    assert tau == 3.0


def krum_agg(rows: torch.Tensor) -> torch.Tensor:
    return krum(rows, f=2)


@pytest.mark.parametrize("name", ["optimal-alie", "optimal-ipm"])
@pytest.mark.parametrize("aggregate", [median_agg, krum_agg], ids=["median", "krum"])
def test_optimal_beats_every_value_of_a_fine_grid(name, aggregate):
    honest = honest_rows(h=9, L=6, seed=5, dtype=torch.float64)
    calls = []

    def counted(rows):
        calls.append(1)
        return aggregate(rows)

    attack = get_attack(name)
    tau, value = attack.search(honest, view(n=11, f=2, aggregate=counted))
    assert 0.01 <= tau <= 100.0 and len(calls) <= attack.grid + attack.refine
    fine = np.geomspace(0.01, 100.0, 4001)
    values = np.array([distance(honest, by_hand_row(name, honest, t), 2, aggregate) for t in fine])
    assert value == pytest.approx(distance(honest, by_hand_row(name, honest, tau), 2, aggregate), rel=1e-9)
    assert value >= values.max() * (1 - 1e-3)
    if aggregate is krum_agg and name == "optimal-alie":
        # a non-trivial search: J rises while Krum keeps selecting b, then drops once b is too far
        assert values.argmax() < len(fine) - 1 and values[-1] < 0.97 * values.max() and tau < 1.0
    out = attack.craft(honest, view(n=11, f=2, aggregate=aggregate))
    assert torch.allclose(out, by_hand_row(name, honest, tau).expand(2, -1))


def test_optimal_needs_the_aggregate():
    with pytest.raises(ValueError, match=r"needs the server's aggregate"):
        get_attack("optimal-alie").craft(honest_rows(), AdversaryView(n=8, f=2))
    assert get_attack("optimal-ipm").needs_aggregate and not get_attack("alie").needs_aggregate


def test_line_search_finds_an_interior_peak_and_ignores_non_finite_values():
    tau, value = line_search(lambda t: -((math.log(t) - 1.3) ** 2), 0.01, 100.0, 13, 24)
    assert abs(math.log(tau) - 1.3) < 1e-4 and value <= 0
    tau, _ = line_search(lambda t: math.inf if t > 10 else t, 0.01, 100.0, 13, 24)
    assert tau <= 10
    tau, _ = line_search(lambda t: 1.0, 0.01, 100.0, 5, 0)  # ties: the smallest τ
    assert tau == 0.01
