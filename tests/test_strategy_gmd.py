"""GMD: x ← x − GM(lr · G), the full geometric median on the gradient protocol."""

import numpy as np
import pytest
import torch
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters

import fedrobust
from fedrobust.config import RunConfig
from fedrobust.strategies import GMD, STRATEGIES


def _replies(rows):
    return [(None, FitRes(Status(Code.OK, ""), ndarrays_to_parameters([np.asarray(r, np.float32)]), 8, {})) for r in rows]


def test_one_step_by_hand_ignores_the_outlier():
    s = STRATEGIES["gmd"](RunConfig(strategy="gmd", lr=0.5, device="cpu"), torch.tensor([1.0, 1.0]), [(2,)])
    assert isinstance(s, GMD) and s.protocol == "gradient"
    rows = [[2.0, 4.0]] * 3 + [[1e4, -1e4]]
    s.aggregate_fit(1, _replies(rows), [])
    # the GM of three copies of (2, 4) and one far point is (2, 4); x = 1 - 0.5 · (2, 4)
    torch.testing.assert_close(s.x, torch.tensor([0.0, -1.0]), atol=1e-5, rtol=0)
    # three of the four rows coincide: over half the weight sits there, so no Weiszfeld step is needed
    assert s._open[1][1].extra["gm_iterations"] == 0


def test_gm_iteration_cap_is_respected():
    rows = np.random.default_rng(0).normal(size=(9, 20))
    s = GMD(RunConfig(strategy="gmd", gm_max_iter=2, gm_tol=1e-12, device="cpu"), torch.zeros(20), [(20,)])
    s.aggregate_fit(1, _replies(rows), [])
    assert s._open[1][1].extra["gm_iterations"] <= 2


def test_base_state_round_trip():
    s = GMD(RunConfig(strategy="gmd", device="cpu"), torch.zeros(2), [(2,)])
    s.aggregate_fit(3, _replies([[1.0, 2.0]] * 3), [])
    state = s.state_dict()
    t = GMD(RunConfig(strategy="gmd", device="cpu"), torch.zeros(2), [(2,)])
    t.load_state_dict(state)
    assert torch.equal(t.x, s.x) and t.server_round == 3 and "memory" not in state


@pytest.mark.slow
def test_gmd_end_to_end():
    results = fedrobust.simulate(
        strategy="gmd", dataset="mnist5k", model="mlp", num_clients=3, clients_per_round=3, rounds=3, lr=0.1,
    )
    rounds = results["rounds"]
    assert all(r["gm_iterations"] >= 1 and r["aggregation_seconds"] > 0 for r in rounds)
    assert rounds[-1]["accuracy"] > results["initial"]["accuracy"] + 0.2
