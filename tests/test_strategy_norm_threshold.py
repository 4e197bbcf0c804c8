"""norm-threshold (Alg. 1, options 1 and 2) and norm-threshold-ef (Alg. 2) as Flower strategies.

Both from Ghosh, Maity, Kadhe, Mazumdar and Ramchandran (2021), "Communication-Efficient and Byzantine-Robust
Distributed Learning with Error Feedback".
"""

import math

import numpy as np
import pytest
import torch
from flwr.common import RecordDict

import fedrobust
from _strategies_ii import load_script, reply
from fedrobust.attacks import get_attack
from fedrobust.clients import (
    CLIENTS,
    ByzantineClient,
    CompressedGradientNormClient,
    ErrorFeedbackClient,
)
from fedrobust.clients.error_feedback import MEMORY_KEY
from fedrobust.compression import get_compressor, payload_nbytes, payload_to_ndarrays
from fedrobust.config import RunConfig
from fedrobust.models import get_model
from fedrobust.strategies import STRATEGIES, NormThreshold, NormThresholdEF

IDENTITY = get_compressor("identity")


def _strategy(name="norm-threshold", **kw):
    cfg = RunConfig(**{"strategy": name, "lr": 0.5, "beta": 0.25, "device": "cpu", **kw})
    return STRATEGIES[name](cfg, torch.zeros(2), [(2,)])


def _identity_reply(vec, **metrics):
    return reply(payload_to_ndarrays(IDENTITY.encode(torch.tensor(vec))), metrics=metrics)


ROWS = [[1.0, 1.0], [3.0, 1.0], [1.0, 3.0], [-50.0, 80.0]]


def test_registry_protocols_and_the_default_compressor():
    assert STRATEGIES["norm-threshold"] is NormThreshold and STRATEGIES["norm-threshold-ef"] is NormThresholdEF
    assert CLIENTS["compressed-gradient-norm"] is CompressedGradientNormClient
    assert CLIENTS["error-feedback"] is ErrorFeedbackClient
    s = _strategy()
    assert s.cfg.compressor == "scaled-sign" == s.fit_config(1)["compressor"]  # auto: the paper's
    assert s.results()["config"]["compressor"] == "scaled-sign"
    assert _strategy(compressor="identity").fit_config(1)["compressor"] == "identity"


def test_option_2_drops_the_largest_message_norm_and_steps_by_lr():
    s = _strategy(compressor="identity", norm_option=2)
    _, metrics = s.aggregate_fit(1, [_identity_reply(r) for r in ROWS], [])
    # floor(0.25 * 4) = 1 row dropped (the attacker's); x = 0 - 0.5 * mean of the three others
    torch.testing.assert_close(s.x, -0.5 * torch.tensor([5.0, 5.0]) / 3)
    assert s.records == [] and metrics["accepted_clients"] == 4


def test_option_1_ranks_by_the_reported_norms():
    s = _strategy(compressor="identity", norm_option=1)
    norms = [1.0, 100.0, 2.0, 3.0]  # row 1 claims the largest norm; the attacker claims a small one
    s.aggregate_fit(1, [_identity_reply(r, grad_norm=n) for r, n in zip(ROWS, norms)], [])
    kept = torch.tensor([ROWS[0], ROWS[2], ROWS[3]]).mean(dim=0)
    torch.testing.assert_close(s.x, -0.5 * kept)


@pytest.mark.parametrize("bad", [None, "1.0", float("nan"), float("inf"), -1.0, True])
def test_option_1_rejects_a_missing_or_bad_norm(bad):
    s = _strategy(compressor="identity", norm_option=1)
    metrics = {} if bad is None else {"grad_norm": bad}
    results = [_identity_reply(r, grad_norm=1.0) for r in ROWS[:3]] + [_identity_reply([9.0, 9.0], **metrics)]
    _, out = s.aggregate_fit(1, results, [])
    assert out["rejected_clients"] == 1 and out["accepted_clients"] == 3
    # option 2 ignores the metrics: the same reply is accepted
    s2 = _strategy(compressor="identity", norm_option=2)
    assert s2.aggregate_fit(1, results, [])[1]["rejected_clients"] == 0


def test_projection_on_the_ball():
    s = _strategy(compressor="identity", radius=0.1, beta=0.0)
    s.aggregate_fit(1, [_identity_reply([4.0, 3.0])], [])
    assert float(torch.linalg.vector_norm(s.x)) == pytest.approx(0.1, rel=1e-6)
    torch.testing.assert_close(s.x, torch.tensor([-0.08, -0.06]))


def test_scaled_sign_payloads_are_decoded_and_counted():
    s = _strategy()
    q = get_compressor("scaled-sign")
    payloads = [q.encode(torch.tensor(r)) for r in ROWS]
    _, metrics = s.aggregate_fit(1, [reply(payload_to_ndarrays(p)) for p in payloads], [])
    assert metrics["bytes_up"] == sum(payload_nbytes(p) for p in payloads) == 4 * 5
    decoded = torch.stack([q.decode(p, 2) for p in payloads[:3]])  # the attacker's row has the largest norm
    torch.testing.assert_close(s.x, -0.5 * decoded.mean(dim=0))


def test_ef_server_takes_no_second_step_size():
    s = _strategy("norm-threshold-ef", compressor="identity")
    s.aggregate_fit(1, [_identity_reply(r) for r in ROWS], [])  # messages already carry lr
    torch.testing.assert_close(s.x, -torch.tensor([5.0, 5.0]) / 3)


def _model():
    return get_model("logistic", input_shape=(3,), num_classes=2, bias=False)


DATA = (torch.eye(3)[[0, 1, 1, 2]], torch.tensor([0, 1, 1, 0]))


def _config(rnd, **kw):
    return {"seed": 0, "server-round": rnd, "batch-size": 4, "lr": 0.5, "compressor": "scaled-sign", **kw}


def test_norm_client_reports_the_uncompressed_norm_also_when_byzantine():
    honest = CompressedGradientNormClient(_model(), *DATA, partition_id=0)
    params = honest.get_parameters({})
    _, _, metrics = honest.fit(params, _config(1))
    assert metrics["grad_norm"] == pytest.approx(math.sqrt(0.125**2 * 2 + 0.25**2))
    byz = ByzantineClient(honest, get_attack("bit-flip", scale=10.0), num_clients=2, fraction=0.5, mode="dynamic")
    assert byz.is_byzantine(0, 1)
    _, _, metrics = byz.fit(params, _config(1))
    assert metrics["grad_norm"] == pytest.approx(10 * math.sqrt(0.125**2 * 2 + 0.25**2))


def test_error_feedback_memory_lives_in_the_context_state():
    state = RecordDict()
    sent, grads = torch.zeros(3), torch.zeros(3)
    q = get_compressor("scaled-sign")
    for rnd in (1, 2, 3):  # a fresh client object every round, as Flower builds them, on the same state
        client = ErrorFeedbackClient(_model(), *DATA, partition_id=0, state=state)
        arrays, _, _ = client.fit(client.get_parameters({}), _config(rnd))
        sent += q.decode(dict(zip(q.keys, arrays)), 3)
        grads += torch.tensor([0.125, -0.25, 0.125])  # the model stays at 0: the same gradient
        assert MEMORY_KEY in state
    memory = ErrorFeedbackClient(_model(), *DATA, partition_id=0, state=state).error_memory()
    torch.testing.assert_close(sent + memory, 0.5 * grads)  # nothing is lost: sent + memory = lr * sum g


# ------------------------------------------------------- norm-thresholding's least squares, end to end

script = load_script()


@pytest.mark.slow
def test_least_squares_acceptance_through_the_strategies():
    """1000 x 250 over 50 clients (as in the paper, 20 rows per client), 3 Byzantine adding N(0, 10 I), beta*m = 4."""
    rows, d, m, rounds = 1000, 250, 50, 60
    run = lambda name, f, **kw: script.least_squares_run(name, rows, d, m, f, rounds, **{"beta": 4 / m, **kw})
    clean = run("norm-threshold", 0, norm_option=1)
    attacked = run("norm-threshold", 3, norm_option=1)
    mean = run("norm-threshold", 3, beta=0.0)
    ef = run("norm-threshold-ef", 3)
    assert clean[-1] < 1e-2 and attacked[-1] < 5e-2
    assert min(mean) > 5e-2  # the plain mean of compressed gradients does not converge under the attack
    assert script.first_below(ef, 1e-2) < script.first_below(attacked, 1e-2)


@pytest.mark.slow
def test_norm_threshold_option_1_on_the_simulation_engine():
    results = fedrobust.simulate(
        strategy="norm-threshold", norm_option=1, dataset="breast-cancer", model="logistic", num_clients=4,
        clients_per_round=4, rounds=4, lr=0.5, batch_size=32, beta=0.25, attack="gaussian",
        attack_params="variance=10", byzantine_fraction=0.25,
    )
    rounds = results["rounds"]
    d = 31
    assert all(r["rejected_clients"] == 0 and r["kept_clients"] == 3 for r in rounds)
    assert all(r["bytes_up"] == 4 * (math.ceil(d / 8) + 4) for r in rounds)  # scaled-sign: bits + a scale
    assert rounds[-1]["accuracy"] > 0.85
    assert np.isfinite(rounds[-1]["loss"])


def test_option_1_reads_norms_from_any_mapping():
    # Through the simulation engine the metrics arrive as a Mapping that is not a dict.
    from types import MappingProxyType

    s = _strategy(compressor="identity", norm_option=1)
    results = [_identity_reply(r, grad_norm=1.0) for r in ROWS]
    for _, res in results:
        res.metrics = MappingProxyType(dict(res.metrics))
    _, metrics = s.aggregate_fit(1, results, [])
    assert metrics["rejected_clients"] == 0
