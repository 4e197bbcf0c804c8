"""weight-decay: honest clients add weight-decay · x to every gradient they compute."""

import torch

from fedrobust.clients import GradientClient, LocalStepsClient
from fedrobust.models import get_model
from fedrobust.core.ndarrays import flatten


def _client(cls):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 5, generator=g), torch.randint(3, (40,), generator=g)
    return cls(get_model("mlp", input_shape=(5,), num_classes=3, seed=1, hidden=7), x, y, partition_id=1)


def _config(**kw):
    return {"server-round": 1, "lr": 0.1, "local-steps": 3, "batch-size": 8, "seed": 0, **kw}


def test_gradient_client_adds_weight_decay_times_x():
    client = _client(GradientClient)
    params = client.get_parameters({})
    x = flatten(params)
    plain = flatten(client.fit(params, _config())[0])
    decayed = flatten(client.fit(params, _config(**{"weight-decay": 0.01}))[0])
    torch.testing.assert_close(decayed, plain + 0.01 * x)


def test_local_steps_client_decays_every_step():
    client = _client(LocalStepsClient)
    params = client.get_parameters({})
    plain = flatten(client.fit(params, _config())[0])
    decayed = flatten(client.fit(params, _config(**{"weight-decay": 0.5}))[0])
    # one local step by hand: x - y1 = lr (g + wd x), so weight decay adds exactly lr·wd·x
    one = _client(LocalStepsClient)
    d1 = flatten(one.fit(params, _config(**{"local-steps": 1, "weight-decay": 0.5}))[0])
    d0 = flatten(one.fit(params, _config(**{"local-steps": 1}))[0])
    torch.testing.assert_close(d1 - d0, 0.1 * 0.5 * flatten(params))
    assert not torch.allclose(plain, decayed)
