"""Norm-thresholding server steps, the ball projection, signSGD's majority step and FED-CURE's server.

Norm-thresholding is from Ghosh, Maity, Kadhe, Mazumdar and Ramchandran (2021), "Communication-Efficient and
Byzantine-Robust Distributed Learning with Error Feedback".
"""

import pytest
import torch

from fedrobust.optim import fedcure_step, norm_threshold_mean, norm_threshold_step, project_ball, signsgd_step


def _messages(device):
    gen = torch.Generator().manual_seed(0)
    honest = torch.randn(8, 30, generator=gen)
    byz = 100 * torch.randn(2, 30, generator=gen)
    return torch.cat([honest, byz]).to(device)


def test_step_drops_the_largest_norms(device):
    msgs = _messages(device)
    x = torch.ones(30, device=device)
    new_x, kept = norm_threshold_step(x, msgs, beta=0.2, lr=0.5)
    assert sorted(kept.tolist()) == list(range(8))
    assert torch.allclose(new_x, x - 0.5 * msgs[:8].mean(0), atol=1e-6)
    assert new_x.device == x.device


def test_option_one_ranks_by_reported_norms(device):
    msgs = _messages(device)
    norms = torch.arange(10, 0, -1, dtype=torch.float32, device=device)  # row 9 smallest
    _, kept = norm_threshold_step(torch.zeros(30, device=device), msgs, 0.5, 1.0, norms=norms)
    assert kept.tolist() == [9, 8, 7, 6, 5]


def test_beta_zero_is_the_plain_mean():
    msgs = _messages("cpu")
    new_x, kept = norm_threshold_step(torch.zeros(30), msgs, 0.0, 2.0)
    assert kept.numel() == 10
    assert torch.allclose(new_x, -2.0 * msgs.mean(0))


def test_projection_on_the_ball():
    x = torch.tensor([3.0, 4.0])
    new_x, _ = norm_threshold_step(torch.zeros(2), -x[None], 0.0, 1.0, radius=2.0)
    assert torch.allclose(new_x, torch.tensor([1.2, 1.6]))
    assert torch.allclose(project_ball(x, 1.0, center=torch.tensor([3.0, 2.0])), torch.tensor([3.0, 3.0]))
    inside = torch.tensor([0.1, 0.1])
    assert torch.equal(project_ball(inside, 1.0), inside)


def test_mean_and_kept_are_consistent():
    msgs = _messages("cpu")
    mean, kept = norm_threshold_mean(msgs, 0.3)
    assert torch.allclose(mean, msgs[kept].mean(0))
    assert kept.numel() == 7


def test_fedcure_step_adds_the_trimmed_mean(device):
    msgs = _messages(device)
    x = torch.ones(30, device=device)
    new_x, kept = fedcure_step(x, msgs, beta=0.2, eta=0.5)
    assert torch.allclose(new_x, x + 0.5 * msgs[:8].mean(0), atol=1e-6)
    assert sorted(kept.tolist()) == list(range(8))


def test_signsgd_step(device):
    signs = torch.tensor([[1.0, -1.0, 1.0, 0.0], [1.0, 1.0, -1.0, 0.0], [1.0, -1.0, -1.0, 5.0]], device=device)
    x = torch.zeros(4, dtype=torch.float64, device=device)
    out = signsgd_step(x, signs, 0.25)
    assert out.dtype == torch.float64 and out.tolist() == [-0.25, 0.25, 0.25, -0.25]


def test_argument_checks():
    x, msgs = torch.zeros(3), torch.zeros(4, 3)
    with pytest.raises(ValueError, match=r"messages must have shape \(n, 3\)"):
        norm_threshold_step(x, torch.zeros(4, 2), 0.1, 1.0)
    with pytest.raises(ValueError, match="beta"):
        norm_threshold_step(x, msgs, 1.0, 1.0)
    with pytest.raises(ValueError, match="lr"):
        norm_threshold_step(x, msgs, 0.1, -1.0)
    with pytest.raises(ValueError, match="radius"):
        norm_threshold_step(x, msgs, 0.1, 1.0, radius=0.0)
    with pytest.raises(ValueError, match="eta"):
        fedcure_step(x, msgs, 0.1, 0.0)
    with pytest.raises(TypeError, match="signs must be a floating-point"):
        signsgd_step(x, torch.zeros(4, 3, dtype=torch.int8), 0.1)
    with pytest.raises(TypeError, match="x must be a 1-D"):
        signsgd_step([0.0], msgs, 0.1)
