"""Argument checks and random-number helpers shared by the compressors."""

from __future__ import annotations

import torch

from ..core.checks import all_finite, check_int
from ..core.checks import check_vector as _check_vector

SEED_MAX = 2**64 - 1
"""Largest seed accepted (seeds travel as one uint64)."""


def check_vector(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """Raise unless ``x`` is a non-empty, finite, 1-D floating-point tensor; return it detached."""
    x = _check_vector(x, name)
    if not all_finite(x):
        raise ValueError(f"{name} must be finite (no NaN or Inf) to be compressed")
    return x.detach()


def check_d(d: int) -> int:
    """Raise unless ``d`` (the vector length) is an int >= 1."""
    return check_int(d, "d", low=1)


def work_dtype(x: torch.Tensor) -> torch.dtype:
    """float64 for float64 input, float32 otherwise (half precision is upcast)."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def check_seed(seed: int | None, generator: torch.Generator | None) -> None:
    """Validate the ``seed`` / ``generator`` pair accepted by every ``encode``."""
    if seed is not None and generator is not None:
        raise ValueError("give either seed or generator, not both")
    if seed is not None:
        check_int(seed, "seed", low=0, high=SEED_MAX)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")


def resolve_seed(seed: int | None, generator: torch.Generator | None) -> int:
    """The seed itself, else one drawn from ``generator`` (else from torch's default generator).

    Examples
    --------
    >>> resolve_seed(7, None)
    7
    >>> g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    >>> resolve_seed(None, g1) == resolve_seed(None, g2)
    True
    """
    if seed is not None:
        return int(seed)
    device = generator.device if generator is not None else "cpu"
    return int(torch.randint(0, 2**63 - 1, (1,), generator=generator, device=device).item())


def make_generator(seed: int | None, generator: torch.Generator | None) -> torch.Generator:
    """A CPU generator seeded with ``seed``, else ``generator`` itself, else a fresh one seeded from torch's RNG."""
    if generator is not None:
        return generator
    return torch.Generator(device="cpu").manual_seed(resolve_seed(seed, None))


def uniform(n: int, generator: torch.Generator, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``n`` draws from U[0, 1) made on ``generator``'s device, then moved to ``device``."""
    return torch.rand(n, generator=generator, dtype=dtype, device=generator.device).to(device)
