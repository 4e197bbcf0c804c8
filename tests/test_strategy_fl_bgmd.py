"""FL-BGMD: P = server-lr · Q(x − y_i) + M[i], block GM, residual rows kept per client id."""

import pytest
import torch
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters

import fedrobust
from fedrobust.compression import get_compressor, payload_to_ndarrays
from fedrobust.config import RunConfig
from fedrobust.strategies import FLBGMD, STRATEGIES

IDENTITY = get_compressor("identity")


def _replies(rows, ids):
    return [
        (None, FitRes(Status(Code.OK, ""), ndarrays_to_parameters(payload_to_ndarrays(IDENTITY.encode(torch.tensor(r)))),
                      8, {"partition_id": i}))
        for r, i in zip(rows, ids)
    ]


def _fl_bgmd(**kw):
    cfg = RunConfig(**{"strategy": "fl-bgmd", "server_lr": 2.0, "lr": 0.01, "rho": 1 / 3, "selection": "top-k",
                       "num_clients": 4, "clients_per_round": 3, "device": "cpu", **kw})
    return STRATEGIES["fl-bgmd"](cfg, torch.zeros(3), [(3,)])


def test_two_rounds_by_hand_with_per_client_residuals():
    s = _fl_bgmd()
    assert isinstance(s, FLBGMD) and s.protocol == "compressed-local-steps" and s.memory_mode == "rows"
    # round 1, clients 0, 1, 2: P = 2·c; column 0 has the most energy; GM(2, 2, 2) = 2
    s.aggregate_fit(1, _replies([[1.0, 0.0, 0.5], [1.0, 0.0, -0.5], [1.0, 0.1, 0.0]], [0, 1, 2]), [])
    torch.testing.assert_close(s.x, torch.tensor([-2.0, 0.0, 0.0]), atol=1e-5, rtol=0)
    expected = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [0.0, 0.2, 0.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(s.residuals, expected)
    # round 2, clients 1, 2, 3 send (0, 0, 0.5): P[:, 2] = 1 + M[:, 2] = (0, 1, 1); the median is 1
    extra_round = 2
    s.aggregate_fit(extra_round, _replies([[0.0, 0.0, 0.5]] * 3, [1, 2, 3]), [])
    torch.testing.assert_close(s.x, torch.tensor([-2.0, 0.0, -1.0]), atol=1e-4, rtol=0)
    # the selected column is cleared for the round's clients; client 0 (not sampled) keeps its row
    expected = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.2, 0.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(s.residuals, expected)
    state = s.state_dict()
    assert state["residuals"].shape == (4, 3) and state["memory"] is None and state["round"] == 2


def test_mean_residual_option():
    s = _fl_bgmd(memory="mean")
    s.aggregate_fit(1, _replies([[1.0, 0.0, 0.5], [1.0, 0.0, -0.5], [1.0, 0.1, 0.0]], [0, 1, 2]), [])
    assert s.residuals is None
    torch.testing.assert_close(s.memory, torch.tensor([0.0, 0.2 / 3, 0.0]))


def test_state_is_restored_into_a_fresh_strategy():
    s = _fl_bgmd()
    s.aggregate_fit(1, _replies([[1.0, 0.0, 0.5], [1.0, 0.0, -0.5], [1.0, 0.1, 0.0]], [0, 1, 2]), [])
    t = _fl_bgmd()
    t.load_state_dict(s.state_dict())
    for strategy in (s, t):
        strategy.aggregate_fit(2, _replies([[0.0, 0.0, 0.5]] * 3, [1, 2, 3]), [])
    assert torch.equal(s.x, t.x) and torch.equal(s.residuals, t.residuals)
    with pytest.raises(ValueError, match="residuals"):
        t.load_state_dict({**s.state_dict(), "residuals": torch.zeros(2, 3)})


@pytest.mark.slow
def test_fl_bgmd_end_to_end():
    results = fedrobust.simulate(
        strategy="fl-bgmd", dataset="mnist5k", model="mlp", num_clients=4, clients_per_round=3, rounds=3, lr=0.1,
        local_steps=2, compressor="qsgd", compressor_params="s=16",
    )
    rounds = results["rounds"]
    d = rounds[0]["bytes_down"] // (3 * 4)
    assert all(r["bytes_up"] == 3 * (d + 4) for r in rounds)  # one int8 level per coordinate plus the norm
    assert all(r["num_clients"] == 3 and r["rejected_clients"] == 0 for r in rounds)
    assert rounds[-1]["accuracy"] > results["initial"]["accuracy"] + 0.2
