"""Argument checks shared by the update rules (one clear message naming the bad argument and its range)."""

from __future__ import annotations


import torch

from ..core.checks import check_nonnegative, check_positive, check_vector

__all__ = ["check_nonnegative", "check_positive", "check_vector", "check_rows"]


def check_rows(rows, name: str, x: torch.Tensor) -> torch.Tensor:
    """Raise unless ``rows`` is an (n, d) floating tensor, n >= 1, with d = ``len(x)``, on ``x``'s device.

    Examples
    --------
    >>> check_rows(torch.zeros(3, 4), "messages", torch.zeros(5))
    Traceback (most recent call last):
    ...
    ValueError: messages must have shape (n, 5) (one row per client), got (3, 4)
    """
    d = x.numel()
    if not isinstance(rows, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (n, {d}), got {type(rows).__name__}")
    if rows.dim() != 2 or rows.shape[0] < 1 or rows.shape[1] != d:
        raise ValueError(f"{name} must have shape (n, {d}) (one row per client), got {tuple(rows.shape)}")
    if not rows.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {rows.dtype}")
    if rows.device != x.device:
        raise ValueError(f"{name} must be on x's device {x.device}, got {rows.device}")
    return rows
