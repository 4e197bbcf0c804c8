"""Sparsifiers: ``top-k`` (largest magnitudes) and ``rand-k`` (coordinates from a shared seed).

Both take ``k`` (an int) or ``ratio`` (k = max(1, round(ratio·d)), resolved at encode/decode time
from the vector length d; ``round`` is Python's, half to even).
"""

from __future__ import annotations

import functools
import numbers

import numpy as np
import torch

from ..core.checks import check_int
from ._checks import resolve_seed
from .base import Compressor, to_tensor
from .payload import PayloadError, expect_finite, expect_length
from .registry import register_compressor

__all__ = ["TopK", "RandK"]

_INT32_MAX = 2**31 - 1


@functools.lru_cache(maxsize=4)
def _seeded_indices(d: int, k: int, seed: int) -> torch.Tensor:
    """``randperm(d)[:k]`` of a CPU generator seeded with ``seed``, sorted ascending (cached).

    Drawing the permutation costs O(d) (about 10 ms at d = 1.16M). Every client of a round and the
    server draw the same set (C-RSA's ω, a rand-k seed), so a process keeps the last few sets;
    callers get a copy.
    """
    gen = torch.Generator(device="cpu").manual_seed(seed)
    return _ascending(torch.randperm(d, generator=gen)[:k], d)


def _ascending(idx: torch.Tensor, d: int) -> torch.Tensor:
    """Distinct indices in [0, d) sorted ascending, in O(d) through a boolean mask (faster than a sort)."""
    mask = torch.zeros(d, dtype=torch.bool, device=idx.device)
    mask[idx] = True
    return mask.nonzero().squeeze(1)


class _Sparsifier(Compressor):
    """Shared ``k`` / ``ratio`` handling."""

    def __init__(self, k: int | None = None, ratio: float | None = None) -> None:
        if (k is None) == (ratio is None):
            raise ValueError(f"{type(self).__name__} needs exactly one of k (int >= 1) or ratio (in (0, 1])")
        if k is not None:
            k = check_int(k, "k", low=1)
        if ratio is not None:
            if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real):
                raise TypeError(f"ratio must be a float in (0, 1], got {ratio!r}")
            if not 0.0 < float(ratio) <= 1.0:
                raise ValueError(f"ratio must lie in (0, 1], got {ratio}")
            ratio = float(ratio)
        self.k = k
        self.ratio = ratio

    @property
    def params(self):
        return {"k": self.k, "ratio": self.ratio}

    def resolve_k(self, d: int) -> int:
        """Number of kept coordinates for length ``d``; raises ValueError if k > d.

        Examples
        --------
        >>> TopK(ratio=0.01).resolve_k(1000), TopK(ratio=0.01).resolve_k(10)
        (10, 1)
        """
        if self.k is None:
            return max(1, round(self.ratio * d))
        if self.k > d:
            raise ValueError(f"k must be <= d, got k={self.k} for d={d}")
        return self.k

    def _delta(self, d):
        return self.resolve_k(d) / d


@register_compressor("top-k")
class TopK(_Sparsifier):
    """Keep the k entries of largest magnitude (ties: whichever ``torch.topk`` picks). Biased, δ = k/d.

    Payload: ``indices`` int32 (k,) strictly increasing, ``values`` float32 (k,): 8·k bytes.

    Parameters
    ----------
    k : int, optional
        Entries kept.
    ratio : float, optional
        Fraction kept instead: k = max(1, round(ratio·d)).

    Examples
    --------
    >>> q = TopK(k=2)
    >>> q.encode(torch.tensor([0.1, -3.0, 0.2, 2.0]))
    {'indices': array([1, 3], dtype=int32), 'values': array([-3.,  2.], dtype=float32)}
    >>> q.compress(torch.tensor([0.1, -3.0, 0.2, 2.0]))
    tensor([ 0., -3.,  0.,  2.])
    """

    dtypes = {"indices": np.dtype(np.int32), "values": np.dtype(np.float32)}

    def _encode(self, x, *, seed, generator):
        d = x.numel()
        if d > _INT32_MAX:
            raise ValueError(f"top-k supports d <= 2**31 - 1 (int32 indices), got d={d}")
        k = self.resolve_k(d)
        idx = _ascending(torch.topk(x.abs(), k, sorted=False).indices, d)
        return {
            "indices": idx.to(device="cpu", dtype=torch.int32).numpy(),
            "values": x[idx].to(device="cpu", dtype=torch.float32).numpy(),
        }

    def _decode(self, fields, d, device):
        k = self.resolve_k(d)
        idx, values = fields["indices"], fields["values"]
        expect_length(idx, k, "top-k payload['indices']")
        expect_length(values, k, "top-k payload['values']")
        if idx[0] < 0 or idx[-1] >= d:
            raise PayloadError(f"top-k payload['indices'] must lie in [0, {d - 1}], got [{idx.min()}, {idx.max()}]")
        if k > 1 and not (np.diff(idx) > 0).all():
            raise PayloadError("top-k payload['indices'] must be strictly increasing (sorted, no duplicates)")
        expect_finite(values, "top-k payload['values']")
        y = torch.zeros(d, dtype=torch.float32, device=device)
        y[to_tensor(idx, device).long()] = to_tensor(values, device)
        return y


@register_compressor("rand-k")
class RandK(_Sparsifier):
    """Keep k coordinates drawn uniformly without replacement from a seed that travels with the values.

    The indices are ``torch.randperm(d, generator)[:k]`` sorted ascending, with ``generator`` a CPU
    ``torch.Generator`` seeded with the payload's seed: sender and receiver regenerate the same set
    (see :meth:`indices`), so only the seed (8 bytes) and the k float32 values (4·k bytes) travel.

    Parameters
    ----------
    k : int, optional
        Entries kept.
    ratio : float, optional
        Fraction kept instead: k = max(1, round(ratio·d)).
    rescale : bool
        False (default): Q(x) = x on the k coordinates, 0 elsewhere; biased, a δ-approximate
        compressor with E‖Q(x) − x‖² = (1 − k/d)‖x‖², δ = k/d (like top-k).
        True: the kept entries are multiplied by d/k at decode; unbiased, E‖Q(x) − x‖² =
        (d/k − 1)‖x‖², so δ = 2 − d/k (<= 0, i.e. no contraction, when k <= d/2).

    Examples
    --------
    >>> q = RandK(k=2)
    >>> p = q.encode(torch.tensor([1.0, 2.0, 3.0, 4.0]), seed=3)
    >>> p["seed"], p["values"].nbytes
    (array([3], dtype=uint64), 8)
    >>> y = q.decode(p, d=4)
    >>> torch.equal(y[q.indices(4, 3)], torch.tensor(p["values"]))
    True
    """

    dtypes = {"seed": np.dtype(np.uint64), "values": np.dtype(np.float32)}
    randomized = True

    def __init__(self, k: int | None = None, ratio: float | None = None, rescale: bool = False) -> None:
        super().__init__(k=k, ratio=ratio)
        if not isinstance(rescale, bool):
            raise TypeError(f"rescale must be a bool, got {rescale!r}")
        self.rescale = rescale

    @property
    def params(self):
        return {**super().params, "rescale": self.rescale}

    @property
    def unbiased(self) -> bool:  # type: ignore[override]
        """True iff ``rescale``."""
        return self.rescale

    def indices(self, d: int, seed: int) -> torch.Tensor:
        """The k sorted coordinates (int64, CPU) that ``seed`` selects in a vector of length ``d``.

        Examples
        --------
        >>> RandK(k=3).indices(10, seed=0).tolist() == RandK(k=3).indices(10, seed=0).tolist()
        True
        """
        return _seeded_indices(int(d), self.resolve_k(d), int(seed)).clone()

    def _encode(self, x, *, seed, generator):
        s = resolve_seed(seed, generator)
        idx = self.indices(x.numel(), s).to(x.device)
        return {
            "seed": np.array([s], dtype=np.uint64),
            "values": x[idx].to(device="cpu", dtype=torch.float32).numpy(),
        }

    def _decode(self, fields, d, device):
        k = self.resolve_k(d)
        seed, values = fields["seed"], fields["values"]
        expect_length(seed, 1, "rand-k payload['seed']")
        expect_length(values, k, "rand-k payload['values']")
        expect_finite(values, "rand-k payload['values']")
        v = to_tensor(values, device)
        if self.rescale:
            v = v * (d / k)
        y = torch.zeros(d, dtype=torch.float32, device=device)
        y[self.indices(d, int(seed[0])).to(device)] = v
        return y

    def _delta(self, d):
        k = self.resolve_k(d)
        return 2.0 - d / k if self.rescale else k / d
