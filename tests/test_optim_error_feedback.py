"""Error feedback (Algorithm 2, client side).

From Ghosh, Maity, Kadhe, Mazumdar and Ramchandran (2021), "Communication-Efficient and Byzantine-Robust
Distributed Learning with Error Feedback".
"""

import pytest
import torch

from fedrobust.compression import get_compressor
from fedrobust.optim import error_feedback_step


def test_message_is_what_travels_and_memory_keeps_the_rest(device):
    gen = torch.Generator().manual_seed(0)
    grad = torch.randn(300, generator=gen).to(device)
    memory = torch.randn(300, generator=gen).to(device)
    q_comp = get_compressor("scaled-sign")
    payload, q, new_memory = error_feedback_step(grad, memory, 0.1, q_comp)
    p = 0.1 * grad + memory
    assert q.device == grad.device and new_memory.device == grad.device
    assert torch.equal(q, q_comp.decode(payload, 300, device=device))
    assert torch.allclose(q, q_comp.compress(p), atol=1e-6)
    assert torch.allclose(new_memory, p - q, atol=1e-6)
    assert not torch.allclose(new_memory, torch.zeros_like(new_memory))  # scaled-sign drops something


def test_first_round_memory_none_equals_zeros():
    grad = torch.tensor([1.0, -2.0, 0.5, 4.0])
    a = error_feedback_step(grad, None, 0.5, "scaled-sign")
    b = error_feedback_step(grad, torch.zeros(4), 0.5, "scaled-sign")
    assert torch.equal(a[1], b[1]) and torch.equal(a[2], b[2])


def test_error_feedback_telescopes():
    """Sum of sent messages + final memory = lr * sum of gradients: nothing is lost over rounds."""
    gen = torch.Generator().manual_seed(1)
    memory, sent, total = None, torch.zeros(50, dtype=torch.float64), torch.zeros(50, dtype=torch.float64)
    for _ in range(20):
        g = torch.randn(50, generator=gen, dtype=torch.float64)
        _, q, memory = error_feedback_step(g, memory, 0.3, get_compressor("top-k", k=5))
        sent += q.double()
        total += 0.3 * g
    assert torch.allclose(sent + memory, total, atol=1e-5)


def test_random_compressor_uses_the_seed():
    g = torch.randn(100)
    q = get_compressor("rand-k", k=10)
    p1, q1, _ = error_feedback_step(g, None, 1.0, q, seed=3)
    p2, q2, _ = error_feedback_step(g, None, 1.0, q, seed=3)
    _, q3, _ = error_feedback_step(g, None, 1.0, q, seed=4)
    assert torch.equal(q1, q2) and not torch.equal(q1, q3)
    assert int(p1["seed"][0]) == 3


def test_argument_checks():
    g = torch.ones(4)
    with pytest.raises(ValueError, match="lr"):
        error_feedback_step(g, None, 0.0, "sign")
    with pytest.raises(ValueError, match="memory must have length 4"):
        error_feedback_step(g, torch.zeros(3), 1.0, "sign")
    with pytest.raises(ValueError, match="grad must be 1-D"):
        error_feedback_step(torch.ones(2, 2), None, 1.0, "sign")
    with pytest.raises(ValueError, match="unknown compressor"):
        error_feedback_step(g, None, 1.0, "nope")
