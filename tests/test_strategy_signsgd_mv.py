"""signsgd-mv: sign messages, majority vote, every coordinate moves by lr or not at all."""

import math

import pytest
import torch

from _strategies_ii import load_script, reply
from fedrobust.compression import get_compressor, payload_to_ndarrays
from fedrobust.config import RunConfig
from fedrobust.strategies import STRATEGIES, SignSGDMV

SIGN = get_compressor("sign")


def _strategy(**kw):
    cfg = RunConfig(**{"strategy": "signsgd-mv", "lr": 0.1, "device": "cpu", **kw})
    return STRATEGIES["signsgd-mv"](cfg, torch.zeros(3), [(3,)])


def test_majority_vote_step_by_hand():
    s = _strategy()
    assert isinstance(s, SignSGDMV) and s.fit_config(1)["compressor"] == "sign"
    rows = [[1.0, -2.0, 3.0], [0.5, 4.0, -1.0], [-7.0, -1.0, 0.0]]
    _, metrics = s.aggregate_fit(1, [reply(payload_to_ndarrays(SIGN.encode(torch.tensor(r)))) for r in rows], [])
    torch.testing.assert_close(s.x, torch.tensor([-0.1, 0.1, 0.0]))
    assert metrics["bytes_up"] == 1 + 1 + 2  # one bit-plane, a second only for the message with a zero


def test_compressor_must_be_sign():
    assert _strategy(compressor="sign").cfg.compressor == "sign"
    with pytest.raises(ValueError, match=r"compressor: signsgd-mv sends sign\(g\), so compressor must be auto or sign; got 'top-k'"):
        _strategy(compressor="top-k", compressor_params="k=1")


def test_trains_in_process():
    script = load_script()
    cfg = RunConfig(strategy="signsgd-mv", dataset="mnist5k", model="mlp", num_clients=3, clients_per_round=3,
                    rounds=3, lr=0.001, batch_size=32)
    results = script.run_inprocess(cfg)
    d = 795_010
    assert results["rounds"][-1]["accuracy"] > results["initial"]["accuracy"] + 0.2
    assert all(r["bytes_up"] <= 3 * 2 * math.ceil(d / 8) for r in results["rounds"])
