"""BGMD: P = lr·G + m, block GM on k = rho·d columns, mean residual memory, x ← x − g~."""

import numpy as np
import pytest
import torch
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters

import fedrobust
from fedrobust.aggregators import geometric_median
from fedrobust.config import RunConfig
from fedrobust.models import num_params
from fedrobust.strategies import BGMD, GMD, STRATEGIES
from fedrobust.strategies.bgmd import block_size
from fedrobust.run.build import build_model

# three honest rows and one attacker 100x larger; after the lr = 0.5 scaling, top-k picks columns 0 and 2
G = [[4.0, 0.2, 8.0], [4.0, -0.2, 8.0], [4.0, 0.6, 8.0], [-400.0, 0.0, -800.0]]


def _replies(rows, ids=None):
    ids = range(len(rows)) if ids is None else ids
    return [
        (None, FitRes(Status(Code.OK, ""), ndarrays_to_parameters([np.asarray(r, np.float32)]), 32, {"partition_id": i}))
        for r, i in zip(rows, ids)
    ]


def _bgmd(d=3, **kw):
    cfg = RunConfig(**{"strategy": "bgmd", "lr": 0.5, "rho": 2 / 3, "selection": "top-k", "device": "cpu", **kw})
    return BGMD(cfg, torch.ones(d), [(d,)])


def _step(s, rnd, rows):
    s.aggregate_fit(rnd, _replies(rows), [])
    return s._open[rnd][1].extra


def test_one_step_and_the_memory_by_hand():
    s = _bgmd()
    assert isinstance(s, STRATEGIES["bgmd"]) and s.protocol == "gradient" and s.k == 2 and s.memory_mode == "mean"
    extra = _step(s, 1, G)
    # P = 0.5 G; columns 0, 2 selected; the GM there of three copies of (2, 4) and (-200, -400) is (2, 4)
    torch.testing.assert_close(s.x, torch.tensor([1.0 - 2.0, 1.0, 1.0 - 4.0]), atol=1e-5, rtol=0)
    # the memory averages P - C_k(P) (column 1 only) with the GM's weights: the three rows at the
    # median share all the weight, the attacker gets ~1e-6 of it: (0.1 - 0.1 + 0.3) / 3
    torch.testing.assert_close(s.memory, torch.tensor([0.0, 0.1, 0.0]), atol=1e-5, rtol=0)
    scores = (0.5 * torch.tensor(G)).pow(2).sum(0)
    assert extra["relative_residual"] == pytest.approx(float(scores[1] / scores.sum()))
    # three of the four rows coincide on the block: they carry over half the weight, so their point
    # is the geometric median and no Weiszfeld step is needed
    assert extra["block_size"] == 2 and extra["gm_iterations"] == 0
    # round 2: the memory is added to every row, then accumulates again in the unselected column
    _step(s, 2, G)
    torch.testing.assert_close(s.x, torch.tensor([-3.0, 1.0, -7.0]), atol=1e-5, rtol=0)
    torch.testing.assert_close(s.memory, torch.tensor([0.0, 0.2, 0.0]), atol=1e-5, rtol=0)


def test_uniform_memory_weights_are_001s_literal_mean():
    cfg = RunConfig(strategy="bgmd", lr=0.5, rho=2 / 3, selection="top-k", device="cpu")
    s = BGMD(cfg, torch.ones(3), [(3,)], memory_weights="uniform")
    _step(s, 1, G)
    torch.testing.assert_close(s.memory, torch.tensor([0.0, 0.075, 0.0]))  # (0.1 - 0.1 + 0.3 + 0) / 4
    _step(s, 2, G)
    torch.testing.assert_close(s.memory, torch.tensor([0.0, 0.15, 0.0]))
    with pytest.raises(ValueError, match="memory_weights"):
        BGMD(cfg, torch.ones(3), [(3,)], memory_weights="median")


def test_memory_none_is_the_ablation_without_memory():
    s = _bgmd(memory="none")
    _step(s, 1, G)
    _step(s, 2, G)
    assert s.memory is None and s.residuals is None
    torch.testing.assert_close(s.x, torch.tensor([-3.0, 1.0, -7.0]), atol=1e-5, rtol=0)


def test_full_block_is_gmd():
    rows = torch.randn(7, 12, generator=torch.Generator().manual_seed(0))
    full = _bgmd(d=12, rho=1.0, selection="sample", gm_tol=1e-10)
    gmd = GMD(RunConfig(strategy="gmd", lr=0.5, gm_tol=1e-10, device="cpu"), torch.ones(12), [(12,)])
    _step(full, 1, rows.numpy())
    _step(gmd, 1, rows.numpy())
    torch.testing.assert_close(full.x, gmd.x)
    torch.testing.assert_close(full.x, 1 - geometric_median(0.5 * rows, tol=1e-10).median, atol=1e-5, rtol=0)


def test_block_size_and_seeded_sampling():
    assert block_size(0.1, 1000) == 100 and block_size(1e-6, 10) == 1
    rows = np.random.default_rng(0).normal(size=(5, 50))
    a, b = _bgmd(d=50, rho=0.2, selection="sample"), _bgmd(d=50, rho=0.2, selection="sample")
    _step(a, 1, rows)
    _step(b, 1, rows)
    assert torch.equal(a.x, b.x) and torch.count_nonzero(a.x - 1) <= 10


def test_a_restarted_strategy_continues_from_its_state():
    rng = np.random.default_rng(1)
    rounds = [rng.normal(size=(4, 30)) for _ in range(3)]
    a = _bgmd(d=30, rho=0.2, selection="sample")
    for rnd, rows in enumerate(rounds[:2], start=1):
        _step(a, rnd, rows)
    state = a.state_dict()
    assert state["round"] == 2 and state["memory"].shape == (30,) and state["residuals"] is None
    b = _bgmd(d=30, rho=0.2, selection="sample")
    b.load_state_dict(state)
    _step(a, 3, rounds[2])
    _step(b, 3, rounds[2])
    assert torch.equal(a.x, b.x) and torch.equal(a.memory, b.memory)
    with pytest.raises(ValueError, match="memory"):
        b.load_state_dict({**state, "memory": torch.zeros(5)})
    with pytest.raises(ValueError, match="x"):
        b.load_state_dict({**state, "x": torch.zeros(5)})


def test_rows_memory_keeps_one_residual_per_partition_id():
    s = _bgmd(d=3, rho=1 / 3, memory="rows", num_clients=5, clients_per_round=3)
    s.aggregate_fit(1, _replies(np.eye(3)[[0, 0, 1]], ids=[4, 0, 2]), [])
    # P = 0.5·rows; top-k keeps column 0; each client's residual is its unselected part
    assert s.residuals.shape == (5, 3)
    torch.testing.assert_close(s.residuals[[4, 0, 2]], torch.tensor([[0, 0, 0], [0, 0, 0], [0, 0.5, 0]]))
    assert not s.residuals[[1, 3]].any()


@pytest.mark.slow
def test_bgmd_end_to_end_records_its_metrics():
    results = fedrobust.simulate(
        strategy="bgmd", dataset="mnist5k", model="mlp", num_clients=3, clients_per_round=3, rounds=3, lr=0.1,
        rho=0.1, weight_decay=1e-4,
    )
    rounds = results["rounds"]
    d = num_params(build_model(RunConfig()))
    assert all(0.0 < r["relative_residual"] < 1.0 and r["gm_iterations"] >= 1 for r in rounds)
    assert all(r["block_size"] == round(0.1 * d) and r["aggregation_seconds"] > 0 for r in rounds)
    assert all(r["bytes_up"] == 3 * 4 * d and r["rejected_clients"] == 0 for r in rounds)
    assert rounds[-1]["accuracy"] > results["initial"]["accuracy"] + 0.2


@pytest.mark.slow
def test_bgmd_survives_bit_flip_where_mean_sgd_collapses():
    setting = dict(
        dataset="mnist5k", model="mlp", num_clients=5, clients_per_round=5, rounds=8, lr=0.1,
        attack="bit-flip", byzantine_fraction=0.2,
    )
    bgmd = fedrobust.simulate(strategy="bgmd", **setting)
    mean = fedrobust.simulate(strategy="mean-sgd", **setting)
    assert all(len(r["byzantine_clients"]) == 1 for r in bgmd["rounds"])
    assert bgmd["rounds"][-1]["accuracy"] > 0.7, [r["accuracy"] for r in bgmd["rounds"]]
    assert mean["rounds"][-1]["accuracy"] < 0.3, [r["accuracy"] for r in mean["rounds"]]
