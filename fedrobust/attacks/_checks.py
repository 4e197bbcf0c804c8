"""Argument checks shared by the attacks (one clear message naming the bad argument and its range)."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..core.checks import check_int, check_positive, check_real, count_of  # noqa: F401 - count_of re-exported

__all__ = [
    "check_real",
    "check_positive",
    "check_open_unit",
    "check_message",
    "check_generator",
    "check_data",
    "check_rng",
    "count_of",
]


def check_open_unit(value, name: str) -> float:
    """Return ``value`` as a float, or raise unless 0 < value < 1.

    Examples
    --------
    >>> check_open_unit(1.0, "c")
    Traceback (most recent call last):
    ...
    ValueError: c must lie in (0, 1), got 1.0
    """
    v = check_real(value, name)
    if not 0.0 < v < 1.0:
        raise ValueError(f"{name} must lie in (0, 1), got {value!r}")
    return v


def check_message(message) -> torch.Tensor:
    """Raise unless ``message`` is a non-empty floating-point tensor; return it detached."""
    if not isinstance(message, torch.Tensor):
        raise TypeError(f"message must be a floating-point torch.Tensor, got {type(message).__name__}")
    if not message.is_floating_point():
        raise TypeError(f"message must be a floating-point tensor, got dtype {message.dtype}")
    if message.numel() < 1:
        raise ValueError("message must have at least one entry")
    return message.detach()


def check_generator(generator) -> None:
    """Raise unless ``generator`` is None or a ``torch.Generator``."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")


def check_rng(rng) -> np.random.Generator:
    """``rng`` itself if it is a ``numpy.random.Generator``; a fresh unseeded one for None; else raise."""
    if rng is None:
        return np.random.default_rng()
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator or None, got {type(rng).__name__}")
    return rng


def check_data(x, y, num_classes) -> int:
    """Validate a local data set (x: (N, ...) floating, y: (N,) integer labels in [0, C-1]); return C."""
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"x must be a floating-point numpy array, got {getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim < 2:
        raise ValueError(f"x must have shape (N, F) or (N, C, H, W), got shape {x.shape}")
    if not isinstance(y, np.ndarray) or not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"y must be an integer numpy array, got {getattr(y, 'dtype', type(y).__name__)}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must have shape ({x.shape[0]},) to match x, got {y.shape}")
    c = check_int(num_classes, "num_classes", low=2)
    if y.size and (y.min() < 0 or y.max() >= c):
        raise ValueError(f"y must lie in [0, {c - 1}] (num_classes={c}), got labels in [{y.min()}, {y.max()}]")
    return c
