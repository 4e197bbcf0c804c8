"""Argument checks shared across fedrobust (clear messages naming the bad argument)."""

from __future__ import annotations

import torch


def check_matrix(x: torch.Tensor, name: str = "x", min_rows: int = 1) -> None:
    """Raise a clear error unless ``x`` is a finite-typed (n, d) floating tensor with n >= ``min_rows``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (n, d), got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape (n, d) (rows = client vectors), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} row(s), got {x.shape[0]}")
    if x.shape[1] < 1:
        raise ValueError(f"{name} needs at least one column, got shape {tuple(x.shape)}")


def check_fraction(value: float, name: str, *, upper: float = 0.5, inclusive_upper: bool = False) -> float:
    """Raise unless ``0 <= value < upper`` (or ``<= upper`` when ``inclusive_upper``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    ok = 0.0 <= v <= upper if inclusive_upper else 0.0 <= v < upper
    if not ok:
        bracket = "]" if inclusive_upper else ")"
        raise ValueError(f"{name} must lie in [0, {upper}{bracket}, got {value!r}")
    return v


def check_int(value: int, name: str, *, low: int, high: int | None = None) -> int:
    """Raise unless ``value`` is an integer in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < low or (high is not None and value > high):
        hi = "inf" if high is None else str(high)
        raise ValueError(f"{name} must lie in [{low}, {hi}], got {value}")
    return value
