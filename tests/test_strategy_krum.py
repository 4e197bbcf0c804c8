"""Krum / multi-Krum: x ← x − lr · Krum_f,m(G), f from krum-f or byzantine-fraction."""

import numpy as np
import pytest
import torch
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters

import fedrobust
from fedrobust.config import RunConfig
from fedrobust.strategies import STRATEGIES, Krum
from fedrobust.strategies.krum import krum_f

ROWS = [[0.0], [1.0], [1.5], [3.0], [50.0]]


def _replies(rows):
    return [(None, FitRes(Status(Code.OK, ""), ndarrays_to_parameters([np.asarray(r, np.float32)]), 8, {})) for r in rows]


def _krum(**kw):
    return STRATEGIES["krum"](RunConfig(**{"strategy": "krum", "lr": 0.5, "device": "cpu", **kw}), torch.zeros(1), [(1,)])


def test_krum_by_hand():
    s = _krum(krum_f=1)
    assert isinstance(s, Krum) and s.protocol == "gradient"
    s.aggregate_fit(1, _replies(ROWS), [])
    # f = 1: each row's score sums its squared distances to its n - f - 2 = 2 nearest others:
    # 0.0 -> 1 + 2.25, 1.0 -> 0.25 + 1, 1.5 -> 0.25 + 2.25, 3.0 -> 2.25 + 4; Krum picks 1.0
    torch.testing.assert_close(s.x, torch.tensor([-0.5]))
    assert s._open[1][1].extra["krum_f"] == 1


def test_multi_krum_averages_the_m_best():
    s = _krum(krum_f=1, krum_m=2)
    s.aggregate_fit(1, _replies(ROWS), [])
    torch.testing.assert_close(s.x, torch.tensor([-0.625]))  # mean(1.0, 1.5) = 1.25


def test_f_is_derived_from_the_byzantine_fraction_and_capped():
    assert krum_f(-1, 0.2, 10, 10) == 2 and krum_f(-1, 0.4, 10, 10) == 3 and krum_f(-1, 0.4, 10, 4) == 0
    s = _krum(byzantine_fraction=0.4, clients_per_round=5, num_clients=5)
    s.aggregate_fit(1, _replies(ROWS), [])
    assert s._open[1][1].extra["krum_f"] == 1  # floor(0.4 · 5) = 2, capped so that 2f + 2 < 5


@pytest.mark.slow
def test_krum_end_to_end():
    results = fedrobust.simulate(
        strategy="krum", dataset="mnist5k", model="mlp", num_clients=4, clients_per_round=4, rounds=3, lr=0.1,
        krum_m=2,
    )
    assert all(r["krum_f"] == 0 for r in results["rounds"])
    assert results["rounds"][-1]["accuracy"] > results["initial"]["accuracy"] + 0.2
