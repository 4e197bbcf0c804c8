"""client-momentum: gradient clients send their worker momentum m ← β·m + (1 − β)·g."""

import pytest
import torch
from flwr.common import RecordDict

from fedrobust.attacks import get_attack
from fedrobust.clients import ByzantineClient, ErrorFeedbackClient, GradientClient
from fedrobust.clients.gradient import MOMENTUM_KEY
from fedrobust.config import RunConfig
from fedrobust.models import get_model
from fedrobust.core.ndarrays import flatten


def _client(cls=GradientClient, state=None):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 5, generator=g), torch.randint(3, (40,), generator=g)
    model = get_model("mlp", input_shape=(5,), num_classes=3, seed=1, hidden=7)
    return cls(model, x, y, partition_id=1, state=state)


def _config(server_round, **kw):
    return {"server-round": server_round, "lr": 0.1, "batch-size": 8, "seed": 0, **kw}


def test_the_reply_is_the_exponential_average_of_the_gradients_over_rounds():
    state = RecordDict()  # Context.state: the same record dict across rounds, new client objects
    params = _client().get_parameters({})
    plain = [flatten(_client().fit(params, _config(r))[0]) for r in (1, 2, 3)]
    sent = [flatten(_client(state=state).fit(params, _config(r, **{"client-momentum": 0.8}))[0]) for r in (1, 2, 3)]
    m = plain[0]
    torch.testing.assert_close(sent[0], m)  # m starts at the first gradient
    for g, out in zip(plain[1:], sent[1:]):
        m = 0.8 * m + 0.2 * g
        torch.testing.assert_close(out, m)
    torch.testing.assert_close(flatten(state[MOMENTUM_KEY]["m"].numpy()), m)
    assert not torch.allclose(sent[2], plain[2])


def test_zero_momentum_keeps_no_state_and_sends_the_gradient():
    state = RecordDict()
    client = _client(state=state)
    params = client.get_parameters({})
    out = flatten(client.fit(params, _config(1, **{"client-momentum": 0.0}))[0])
    torch.testing.assert_close(out, flatten(_client().fit(params, _config(1))[0]))
    assert MOMENTUM_KEY not in state


def test_error_feedback_clients_compress_the_momentum():
    state = RecordDict()
    params = _client().get_parameters({})
    config = {**_config(1), "compressor": "identity", "client-momentum": 0.5}
    _client(ErrorFeedbackClient, state=state).fit(params, config)
    assert MOMENTUM_KEY in state and "fedrobust-error-memory" in state


def test_an_update_attack_corrupts_the_momentum_it_would_send():
    params = _client().get_parameters({})
    config = lambda r: _config(r, **{"client-momentum": 0.5})  # noqa: E731
    attacker_state, honest_state = RecordDict(), RecordDict()
    for r in (1, 2):
        attacker = ByzantineClient(_client(state=attacker_state), get_attack("bit-flip"), num_clients=2, fraction=0.5)
        assert attacker.is_byzantine(0, r) == attacker.is_byzantine(0, 1)  # the fixed set
        if not attacker.is_byzantine(0, r):
            pytest.skip("partition 1 is honest under this seed")
        m = flatten(_client(state=honest_state).fit(params, config(r))[0])
        out = flatten(attacker.fit(params, config(r))[0])
        torch.testing.assert_close(out, -100.0 * m)  # bit-flip of the momentum, kept as an honest one's


@pytest.mark.parametrize("beta", [-0.1, 1.0, float("nan")])
def test_momentum_outside_zero_one_is_refused(beta):
    with pytest.raises(ValueError, match="client-momentum"):
        RunConfig(client_momentum=beta)
