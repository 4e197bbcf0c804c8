"""fedrobust.run.build.client_model: a per-thread working copy that always equals a fresh build_model."""

import threading

import numpy as np
import pytest
import torch

from fedrobust.config import RunConfig
from fedrobust.models.params import copy_parameters, reset_to
from fedrobust.run.build import build_model, client_model, model_template

CFG = RunConfig(dataset="digits", model="mlp")


def equal_models(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) and sa[k].dtype == sb[k].dtype for k in sa)


def test_a_used_copy_comes_back_as_new():
    model = client_model(CFG)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(-3.0).add_(1.0)
    loss = model(torch.randn(4, 64)).sum()
    loss.backward()
    model.eval()
    next(model.parameters()).requires_grad_(False)
    again = client_model(CFG)
    assert again is model
    assert equal_models(again, build_model(CFG))
    assert again.training and all(m.training for m in again.modules())
    assert all(p.grad is None and p.requires_grad for p in again.parameters())


def test_a_changed_structure_gets_a_new_copy():
    model = client_model(CFG)
    model.double()  # dtypes no longer the template's
    again = client_model(CFG)
    assert again is not model and equal_models(again, build_model(CFG))
    again.extra = torch.nn.Linear(2, 2)  # a module the template lacks
    third = client_model(CFG)
    assert third is not again and not hasattr(third, "extra") and equal_models(third, build_model(CFG))


def test_each_setting_and_each_thread_has_its_own_copy():
    other = CFG.replace(seed=CFG.seed + 1)
    a, b = client_model(CFG), client_model(other)
    assert a is not b and not equal_models(a, b)
    assert equal_models(b, build_model(other)) and equal_models(client_model(CFG), build_model(CFG))
    seen = []
    thread = threading.Thread(target=lambda: seen.append(client_model(CFG)))
    thread.start()
    thread.join()
    assert seen[0] is not client_model(CFG) and equal_models(seen[0], build_model(CFG))


def test_server_models_are_not_the_clients_copy():
    assert build_model(CFG) is not client_model(CFG) and build_model(CFG) is not build_model(CFG)


def test_reset_to_restores_buffers_and_refuses_other_structures():
    template = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    model(torch.randn(3, 1, 5, 5))  # moves the running statistics
    assert reset_to(model, template) and equal_models(model, template)
    assert not reset_to(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3)), template)
    assert not reset_to(torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.BatchNorm2d(3)), template)


def test_a_copy_reset_without_its_parameters_keeps_them_and_resets_the_rest():
    model = client_model(CFG)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(7.0)
    model(torch.randn(4, 64)).sum().backward()
    model.eval()
    again = client_model(CFG, parameters=False)
    assert again is model
    assert all(bool((p == 7.0).all()) for p in again.parameters())  # the values are left
    assert again.training and all(p.grad is None and p.requires_grad for p in again.parameters())
    copy_parameters(again, model_template(CFG))
    assert equal_models(again, build_model(CFG))


def _client(parameters_from):
    from fedrobust.clients.gradient import GradientClient

    x, y = torch.randn(8, 64), torch.randint(0, 10, (8,))
    model = client_model(CFG)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))  # a previous message's values, stale
    return GradientClient(client_model(CFG, parameters=False), x, y, partition_id=0, parameters_from=parameters_from)


def test_a_client_takes_the_template_values_at_first_use_unless_it_loads_first():
    template = model_template(CFG)
    fresh = [p.detach().numpy().copy() for p in template.parameters()]
    # Read before any load: the template's values, as a freshly reset model has.
    assert all(np.array_equal(a, b) for a, b in zip(_client(template).get_parameters({}), fresh))
    # Loaded first: the server's values, and the template's are never copied in.
    client = _client(template)
    sent = [np.full_like(a, 0.5) for a in fresh]
    vec = client.load(sent)
    assert client._parameters_from is None
    assert all(bool((p == 0.5).all()) for p in client.model.parameters()) and bool((vec == 0.5).all())
    # A load that fails leaves the template to be copied in at the next use.
    client = _client(template)
    with pytest.raises(ValueError):
        client.load(sent[:-1])
    assert all(np.array_equal(a, b) for a, b in zip(client.get_parameters({}), fresh))
