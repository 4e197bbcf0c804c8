"""fedrobust.run.build.client_model: a per-thread working copy that always equals a fresh build_model."""

import threading

import torch

from fedrobust.config import RunConfig
from fedrobust.models.params import reset_to
from fedrobust.run.build import build_model, client_model

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
