"""Honest clients on small synthetic data: the gradient and local-steps protocols, seeding, state."""

import numpy as np
import pytest
import torch
from flwr.common import RecordDict

from fedrobust.clients import CLIENTS, GradientClient, LocalStepsClient, batch_generator
from fedrobust.models import flat_grad, flat_params, get_model, set_flat_params
from fedrobust.core.ndarrays import flatten, to_ndarrays


def _data(n=40, f=5, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, f, generator=g), torch.randint(classes, (n,), generator=g)


def _model():
    return get_model("mlp", input_shape=(5,), num_classes=3, seed=1, hidden=7)


def _config(server_round=1, **kw):
    return {"server-round": server_round, "lr": 0.1, "local-steps": 3, "batch-size": 8, "seed": 0, **kw}


def _global(model):
    vec = flat_params(model) + 0.01
    return vec, to_ndarrays(vec, [tuple(p.shape) for p in model.parameters()])


def test_registry_maps_protocols_to_classes():
    assert CLIENTS["gradient"] is GradientClient and CLIENTS["local-steps"] is LocalStepsClient


def test_gradient_client_returns_the_minibatch_gradient_at_the_received_model():
    x, y = _data()
    client = GradientClient(_model(), x, y, partition_id=2)
    vec, arrays = _global(client.model)
    out, n, metrics = client.fit(arrays, _config())

    ref = _model()
    set_flat_params(ref, vec)
    (xb, yb), = client.minibatches(_config(), steps=1)
    ref.loss(ref(xb), yb).backward()
    assert n == 8
    assert [a.shape for a in out] == [a.shape for a in arrays] and all(a.dtype == np.float32 for a in out)
    torch.testing.assert_close(flatten(out), flat_grad(ref))
    assert metrics["bytes_sent"] == sum(a.nbytes for a in out) == vec.numel() * 4
    assert metrics["partition_id"] == 2


def test_minibatches_are_seeded_by_seed_partition_and_round():
    x, y = _data()
    a = GradientClient(_model(), x, y, partition_id=0)
    b = GradientClient(_model(), x, y, partition_id=0)
    c = GradientClient(_model(), x, y, partition_id=1)
    batch = lambda cl, **kw: cl.minibatches(_config(**kw), steps=1)[0][1]  # noqa: E731
    assert torch.equal(batch(a), batch(b))
    assert not torch.equal(batch(a), batch(a, server_round=2))
    assert not torch.equal(batch(a), batch(c))
    assert not torch.equal(batch(a), batch(a, seed=1))
    g1, g2 = batch_generator(0, 0, 1), batch_generator(0, 1, 0)
    assert not torch.equal(torch.randperm(50, generator=g1), torch.randperm(50, generator=g2))


def test_local_steps_client_returns_x_minus_y_after_h_sgd_steps():
    x, y = _data()
    client = LocalStepsClient(_model(), x, y, partition_id=0)
    vec, arrays = _global(client.model)
    out, n, metrics = client.fit(arrays, _config())

    ref = _model()
    set_flat_params(ref, vec)
    for xb, yb in client.minibatches(_config(), steps=3):
        ref.zero_grad()
        ref.loss(ref(xb), yb).backward()
        with torch.no_grad():
            for p in ref.parameters():
                p -= 0.1 * p.grad
    assert n == len(x)
    torch.testing.assert_close(flatten(out), vec - flat_params(ref))
    assert metrics["loss"] > 0


def test_one_local_step_equals_lr_times_the_gradient():
    x, y = _data()
    grad, _, _ = GradientClient(_model(), x, y, partition_id=3).fit(_global(_model())[1], _config())
    delta, _, _ = LocalStepsClient(_model(), x, y, partition_id=3).fit(_global(_model())[1], _config(**{"local-steps": 1}))
    torch.testing.assert_close(flatten(delta), 0.1 * flatten(grad))


def test_state_survives_between_rounds_in_the_context_recorddict():
    x, y = _data()
    state = RecordDict()
    for r in (1, 2, 3):  # a fresh client per message, as Flower's client_fn builds them
        client = GradientClient(_model(), x, y, partition_id=0, state=state)
        _, _, metrics = client.fit(_global(_model())[1], _config(r))
    assert metrics["rounds_participated"] == 3
    memory = GradientClient(_model(), x, y, partition_id=0, state=state).state_summary()
    assert memory == {"rounds-participated": 3, "bytes-sent": 3 * metrics["bytes_sent"]}


def test_properties_report_the_partition_id_and_bad_data_is_refused():
    x, y = _data()
    props = GradientClient(_model(), x, y, partition_id=5).get_properties({})
    assert props == {"partition-id": 5, "num-examples": 40}
    with pytest.raises(ValueError, match="same, non-zero number of examples"):
        GradientClient(_model(), x, y[:3], partition_id=0)
