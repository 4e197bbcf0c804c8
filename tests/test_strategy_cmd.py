"""CMD: x ← x − lr · coordinate_median(G)."""

import numpy as np
import pytest
import torch
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters

import fedrobust
from fedrobust.config import RunConfig
from fedrobust.strategies import CMD, STRATEGIES


def _replies(rows):
    return [(None, FitRes(Status(Code.OK, ""), ndarrays_to_parameters([np.asarray(r, np.float32)]), 8, {})) for r in rows]


def test_one_step_by_hand():
    s = STRATEGIES["cmd"](RunConfig(strategy="cmd", lr=0.5, device="cpu"), torch.zeros(2), [(2,)])
    assert isinstance(s, CMD) and s.protocol == "gradient"
    s.aggregate_fit(1, _replies([[1.0, 5.0], [2.0, -1.0], [100.0, 0.0]]), [])
    # the coordinate medians are (2, 0)
    torch.testing.assert_close(s.x, torch.tensor([-1.0, 0.0]))


@pytest.mark.slow
def test_cmd_end_to_end():
    results = fedrobust.simulate(
        strategy="cmd", dataset="mnist5k", model="mlp", num_clients=3, clients_per_round=3, rounds=3, lr=0.1,
    )
    assert results["rounds"][-1]["accuracy"] > results["initial"]["accuracy"] + 0.2
