"""Trimmed mean: x ← x − lr · TM_beta(G), beta trimmed from each side of every coordinate."""

import numpy as np
import pytest
import torch
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters

import fedrobust
from fedrobust.config import RunConfig
from fedrobust.strategies import STRATEGIES, TrimmedMean


def _replies(rows):
    return [(None, FitRes(Status(Code.OK, ""), ndarrays_to_parameters([np.asarray(r, np.float32)]), 8, {})) for r in rows]


def test_one_step_by_hand():
    cfg = RunConfig(strategy="trimmed-mean", lr=0.5, beta=0.25, device="cpu")
    s = STRATEGIES["trimmed-mean"](cfg, torch.zeros(2), [(2,)])
    assert isinstance(s, TrimmedMean) and s.protocol == "gradient"
    s.aggregate_fit(1, _replies([[1.0, -50.0], [2.0, 4.0], [3.0, 6.0], [1000.0, 2.0]]), [])
    # one value trimmed from each side: mean(2, 3) = 2.5 and mean(2, 4) = 3
    torch.testing.assert_close(s.x, torch.tensor([-1.25, -1.5]))


def test_beta_must_trim_less_than_half_from_each_side():
    with pytest.raises(ValueError, match=r"beta must lie in \[0, 0.5\)"):
        TrimmedMean(RunConfig(strategy="trimmed-mean", beta=0.5, device="cpu"), torch.zeros(2), [(2,)])


@pytest.mark.slow
def test_trimmed_mean_end_to_end():
    results = fedrobust.simulate(
        strategy="trimmed-mean", dataset="mnist5k", model="mlp", num_clients=3, clients_per_round=3, rounds=3,
        lr=0.1, beta=0.2,
    )
    assert results["rounds"][-1]["accuracy"] > results["initial"]["accuracy"] + 0.2
