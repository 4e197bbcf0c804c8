"""QBGMD: BGMD on compressed gradients; untrusted payloads are decoded, malformed ones rejected."""

import numpy as np
import pytest
import torch
from flwr.common import Code, FitRes, Parameters, Status, ndarrays_to_parameters

import fedrobust
from fedrobust.compression import get_compressor, payload_nbytes, payload_to_ndarrays
from fedrobust.config import RunConfig
from fedrobust.strategies import QBGMD, STRATEGIES

TOP2 = get_compressor("top-k", k=2)


def _reply(arrays, n=8):
    return (None, FitRes(Status(Code.OK, ""), ndarrays_to_parameters(arrays), n, {}))


def _payload(vec):
    return payload_to_ndarrays(TOP2.encode(torch.tensor(vec)))


def _qbgmd(**kw):
    cfg = RunConfig(**{"strategy": "qbgmd", "lr": 0.5, "rho": 2 / 3, "selection": "top-k", "compressor": "top-k",
                       "compressor_params": "k=2", "device": "cpu", **kw})
    return STRATEGIES["qbgmd"](cfg, torch.ones(3), [(3,)])


def test_one_step_by_hand_on_decoded_payloads():
    s = _qbgmd()
    assert isinstance(s, QBGMD) and s.protocol == "compressed-gradient"
    config = s.fit_config(1)
    assert config["compressor"] == "top-k" and config["compressor-params"] == "k=2"
    rows = [[4.0, 0.2, 8.0], [4.0, -0.2, 8.0], [4.0, 0.6, 8.0], [-400.0, 0.0, -800.0]]
    _, metrics = s.aggregate_fit(1, [_reply(_payload(r)) for r in rows], [])
    # top-2 drops column 1 on every client; the GM of 0.5·(4, 8) x3 and 0.5·(-400, -800) is (2, 4)
    torch.testing.assert_close(s.x, torch.tensor([-1.0, 1.0, -3.0]), atol=1e-5, rtol=0)
    assert torch.equal(s.memory, torch.zeros(3))
    assert metrics["bytes_up"] == 4 * 16 == sum(payload_nbytes(TOP2.encode(torch.tensor(r))) for r in rows)


def test_malformed_payloads_are_rejected_and_counted_not_raised():
    s = _qbgmd()
    good = _payload([4.0, 0.0, 8.0])
    bad = [
        [good[0]],  # an array missing
        [good[0].astype(np.int64), good[1]],  # wrong dtype
        [np.array([0, 7], np.int32), good[1]],  # index out of range
        [np.array([2, 0], np.int32), good[1]],  # indices not sorted
        [good[0], np.array([np.nan, 1.0], np.float32)],  # NaN value
        [np.ones(3, np.float32)],  # an uncompressed reply
    ]
    results = [_reply(good), *(_reply(b) for b in bad)]
    results.append((None, FitRes(Status(Code.OK, ""), Parameters([b"junk"], "numpy.ndarray"), 8, {})))
    _, metrics = s.aggregate_fit(1, results, [])
    assert metrics["accepted_clients"] == 1 and metrics["rejected_clients"] == 7
    torch.testing.assert_close(s.x, torch.tensor([-1.0, 1.0, -3.0]), atol=1e-5, rtol=0)


def test_bad_compressor_params_fail_at_construction():
    with pytest.raises(ValueError):
        _qbgmd(compressor_params="nope=1")


@pytest.mark.slow
def test_qbgmd_end_to_end_sends_compressed_bytes():
    results = fedrobust.simulate(
        strategy="qbgmd", dataset="mnist5k", model="mlp", num_clients=3, clients_per_round=3, rounds=3, lr=0.1,
        compressor="top-k", compressor_params="ratio=0.1",
    )
    rounds = results["rounds"]
    # top-k with ratio 0.1 sends k int32 indices and k float32 values: 8k bytes, a fifth of 4d
    assert all(5 * r["bytes_up"] == pytest.approx(r["bytes_down"], rel=1e-3) for r in rounds)
    assert all(r["rejected_clients"] == 0 and 0 <= r["relative_residual"] < 1 for r in rounds)
    assert rounds[-1]["accuracy"] > results["initial"]["accuracy"] + 0.2
