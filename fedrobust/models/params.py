"""Flat-vector views of a model's parameters and gradients, in ``model.parameters()`` order."""

from __future__ import annotations

import torch
from torch import nn


def num_params(model: nn.Module) -> int:
    """Number of scalars in ``model.parameters()`` (the length of :func:`flat_params`).

    Examples
    --------
    >>> num_params(torch.nn.Linear(3, 2))
    8
    """
    return sum(p.numel() for p in model.parameters())


def flat_params(model: nn.Module) -> torch.Tensor:
    """A 1-D float32 copy of all parameters, concatenated in ``model.parameters()`` order.

    Examples
    --------
    >>> lin = torch.nn.Linear(2, 1)
    >>> with torch.no_grad():
    ...     _ = lin.weight.fill_(1.0), lin.bias.fill_(-1.0)
    >>> flat_params(lin)
    tensor([ 1.,  1., -1.])
    """
    params = list(model.parameters())
    if not params:
        return torch.zeros(0, dtype=torch.float32)
    return torch.cat([p.detach().reshape(-1).to(torch.float32) for p in params])


def set_flat_params(model: nn.Module, vec: torch.Tensor) -> None:
    """Copy ``vec`` (1-D, length :func:`num_params`) into the model's parameters, in place.

    The vector may live on any device and have any floating dtype; each chunk is cast to its parameter's
    device and dtype.

    Examples
    --------
    >>> lin = torch.nn.Linear(2, 1)
    >>> set_flat_params(lin, torch.tensor([1.0, 2.0, 3.0]))
    >>> lin.weight.tolist(), lin.bias.tolist()
    ([[1.0, 2.0]], [3.0])
    """
    if not isinstance(vec, torch.Tensor):
        raise TypeError(f"vec must be a torch.Tensor, got {type(vec).__name__}")
    expected = num_params(model)
    if vec.dim() != 1 or vec.numel() != expected:
        raise ValueError(
            f"vec must be 1-D with {expected} entries (the model's parameters), got shape {tuple(vec.shape)}"
        )
    offset = 0
    with torch.no_grad():
        for p in model.parameters():
            k = p.numel()
            p.copy_(vec[offset : offset + k].reshape(p.shape))
            offset += k


def flat_grad(model: nn.Module) -> torch.Tensor:
    """A 1-D float32 copy of all ``.grad`` tensors (zeros where a parameter has no gradient).

    Examples
    --------
    >>> lin = torch.nn.Linear(2, 1)
    >>> lin(torch.ones(1, 2)).sum().backward()
    >>> flat_grad(lin)
    tensor([1., 1., 1.])
    """
    chunks = []
    for p in model.parameters():
        g = p.grad
        if g is None:
            chunks.append(torch.zeros(p.numel(), dtype=torch.float32, device=p.device))
        else:
            chunks.append(g.detach().reshape(-1).to(torch.float32))
    if not chunks:
        return torch.zeros(0, dtype=torch.float32)
    return torch.cat(chunks)
