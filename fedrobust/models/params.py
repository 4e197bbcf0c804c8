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


def copy_parameters(model: nn.Module, template: nn.Module) -> None:
    """Copy the values of ``template``'s parameters into ``model``'s (the same structure), in place.

    Examples
    --------
    >>> a, b = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    >>> copy_parameters(a, b)
    >>> torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    True
    """
    with torch.no_grad():
        for p, t in zip(model.parameters(), template.parameters(), strict=True):
            p.copy_(t)


def reset_to(model: nn.Module, template: nn.Module, *, parameters: bool = True) -> bool:
    """Make ``model`` what ``copy.deepcopy(template)`` would be, in place; False (``model`` left
    as it may be) when it no longer has the template's structure, so only a new copy will do.

    Parameters and buffers take the template's values, dtypes checked (the device stays
    ``model``'s); gradients are cleared; ``requires_grad`` and every module's train/eval mode are
    the template's. Far cheaper than a deep copy for a model rebuilt per message.

    With ``parameters=False`` the parameters keep their values (everything else is reset): for a
    caller that overwrites every parameter before it reads one, or copies the template's in later
    (:func:`copy_parameters`).

    Examples
    --------
    >>> import copy
    >>> template = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    >>> model = copy.deepcopy(template).eval()
    >>> with torch.no_grad():
    ...     _ = model[0].weight.add_(1.0), model[1].running_mean.fill_(3.0)
    >>> reset_to(model, template), model.training
    (True, True)
    >>> all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), template.state_dict().values()))
    True
    >>> reset_to(torch.nn.Linear(2, 3), template)
    False
    """
    modules, template_modules = list(model.modules()), list(template.modules())
    if len(modules) != len(template_modules) or any(type(a) is not type(b) for a, b in zip(modules, template_modules)):
        return False
    mine = list(model.named_parameters()), list(model.named_buffers())
    theirs = list(template.named_parameters()), list(template.named_buffers())
    if len(mine[0]) != len(theirs[0]) or len(mine[1]) != len(theirs[1]):
        return False
    pairs, buffers = list(zip(mine[0], theirs[0])), list(zip(mine[1], theirs[1]))
    for (name, a), (t_name, b) in pairs + buffers:
        if name != t_name or a.shape != b.shape or a.dtype != b.dtype:
            return False
    with torch.no_grad():
        for (_, p), (_, t) in pairs:
            if parameters:
                p.copy_(t)
            p.grad = None
            p.requires_grad_(t.requires_grad)
        for (_, buf), (_, t) in buffers:
            buf.copy_(t)
    for module, t_module in zip(modules, template_modules):
        module.training = t_module.training
    return True
