"""Argument checks shared by the update rules (one clear message naming the bad argument and its range)."""

from __future__ import annotations

import math
import numbers

import torch

__all__ = ["check_nonnegative", "check_positive", "check_vector", "check_rows"]


def _real(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return v


def check_positive(value, name: str) -> float:
    """Return ``value`` as a float, or raise unless it is a finite number > 0.

    Examples
    --------
    >>> check_positive(0.5, "lr")
    0.5
    >>> check_positive(0, "lr")
    Traceback (most recent call last):
    ...
    ValueError: lr must be a finite number > 0, got 0
    """
    v = _real(value, name)
    if v <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return v


def check_nonnegative(value, name: str) -> float:
    """Return ``value`` as a float, or raise unless it is a finite number >= 0.

    Examples
    --------
    >>> check_nonnegative(-1, "lam")
    Traceback (most recent call last):
    ...
    ValueError: lam must be a finite number >= 0, got -1
    """
    v = _real(value, name)
    if v < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return v


def check_vector(x, name: str, d: int | None = None) -> torch.Tensor:
    """Raise unless ``x`` is a non-empty 1-D floating-point tensor (of length ``d`` if given); return it.

    Examples
    --------
    >>> check_vector(torch.zeros(2, 2), "x")
    Traceback (most recent call last):
    ...
    ValueError: x must be 1-D (a flat parameter vector), got shape (2, 2)
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a 1-D floating-point torch.Tensor, got {type(x).__name__}")
    if x.dim() != 1:
        raise ValueError(f"{name} must be 1-D (a flat parameter vector), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.numel() < 1:
        raise ValueError(f"{name} must have at least one entry")
    if d is not None and x.numel() != d:
        raise ValueError(f"{name} must have length {d}, got {x.numel()}")
    return x


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
