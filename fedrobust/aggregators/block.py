"""Block coordinate selection C_k (active norm sampling).

Algorithm 2 of Acharya, Hashemi, Jain, Sanghavi, Dhillon and Topcu (2022), "Robust Training in High Dimensions
via Block Coordinate Geometric Median Descent" (AISTATS).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from ..core.checks import all_finite, check_int, check_matrix
from ._chunks import column_blocks

SELECTIONS = ("sample", "top-k")


class BlockSelection(NamedTuple):
    """Result of :func:`block_select`."""

    indices: torch.Tensor
    """The k selected column indices, sorted ascending (int64)."""
    scores: torch.Tensor
    """Column scores ``||x[:, j]||^2``, shape (d,)."""
    relative_residual: float
    """``||x - C_k(x)||_F^2 / ||x||_F^2`` = 1 - xi (0 when ``x`` is all zeros)."""


def column_scores(x: torch.Tensor) -> torch.Tensor:
    """Squared column norms ``s_j = sum_i x[i, j]^2``, reading ``x`` once.

    When a score overflows ``x``'s dtype (entries above about 1.8e19 in float32, which any
    attacker may send), every score is computed in float64 and multiplied by one power of two
    that brings the largest to about 2**100: the scores keep their ratios, which is all that the
    block selection and the relative residual use.

    Examples
    --------
    >>> column_scores(torch.tensor([[1.0, 2.0], [3.0, 0.0]]))
    tensor([10.,  4.])
    >>> s = column_scores(torch.tensor([[3e38, 1e38], [0.0, 0.0]]))
    >>> bool(torch.isfinite(s).all()), round(float(s[0] / s[1]), 3)
    (True, 9.0)
    """
    check_matrix(x)
    out = torch.empty(x.shape[1], dtype=x.dtype, device=x.device)
    for start, block in column_blocks(x):
        torch.sum(block * block, dim=0, out=out[start : start + block.shape[1]])
    if x.dtype != torch.float64 and not all_finite(out):
        return _rescaled_scores(x)
    return out


def _rescaled_scores(x: torch.Tensor) -> torch.Tensor:
    """Column scores that overflow ``x``'s dtype, computed in float64 and scaled by one power of
    two into its range: the sampling probabilities and the relative residual are unchanged."""
    scores = torch.empty(x.shape[1], dtype=torch.float64, device=x.device)
    for start, block in column_blocks(x):
        scores[start : start + block.shape[1]] = block.to(torch.float64).pow(2).sum(dim=0)
    exponent = math.frexp(float(scores.max()))[1] - 100  # the largest score becomes about 2**100
    return torch.ldexp(scores, torch.tensor(-exponent, dtype=torch.float64, device=x.device)).to(x.dtype)


def relative_residual(scores: torch.Tensor, indices: torch.Tensor) -> float:
    """The relative residual ``1 - xi = ||G - C_k(G)||_F^2 / ||G||_F^2`` of a selection.

    Parameters
    ----------
    scores : torch.Tensor
        Column scores of ``G`` (see :func:`column_scores`).
    indices : torch.Tensor
        Selected columns.

    Examples
    --------
    >>> relative_residual(torch.tensor([1.0, 3.0, 0.0]), torch.tensor([1]))
    0.25
    """
    total = float(scores.sum(dtype=torch.float64))
    if total == 0.0:
        return 0.0
    kept = float(scores.index_select(0, indices).sum(dtype=torch.float64))
    return max(0.0, 1.0 - kept / total)


def block_select(
    x: torch.Tensor,
    k: int,
    generator: torch.Generator | None = None,
    selection: str = "sample",
) -> BlockSelection:
    """Choose k of the d columns of ``x``: BGMD's block coordinate selection.

    With ``selection="sample"`` (Algorithm 2 of Acharya et al., 2022), k distinct columns are drawn without
    replacement, each draw picking a remaining column with probability proportional to its score
    ``s_j = ||x[:, j]||^2``. The draw uses exponential keys (Efraimidis and Spirakis): column j gets
    ``E_j / s_j`` with ``E_j ~ Exp(1)`` and the k smallest keys win, which is exactly successive
    sampling without replacement, in O(d) vectorised work. Columns with zero score are chosen only
    when fewer than k columns have a positive score, then uniformly at random.
    ``selection="top-k"`` takes the k largest scores deterministically (what the BGMD authors'
    released code does).

    Note that rows with huge entries (e.g. scaled bit-flip attackers) dominate the column scores
    and so steer which block is chosen; the geometric median on the block still limits their
    influence on the aggregate.

    Parameters
    ----------
    x : torch.Tensor
        Shape (n, d).
    k : int
        Number of columns, ``1 <= k <= d``.
    generator : torch.Generator, optional
        Seeded generator on ``x``'s device, for reproducible draws.
    selection : {"sample", "top-k"}
        Sampling rule.

    Returns
    -------
    BlockSelection
        ``(indices, scores, relative_residual)``.

    Examples
    --------
    >>> x = torch.tensor([[0.0, 5.0, 0.0, 1.0], [0.0, 5.0, 0.0, 1.0]])
    >>> block_select(x, 1, selection="top-k").indices.tolist()
    [1]
    >>> g = torch.Generator().manual_seed(0)
    >>> sorted(block_select(x, 2, generator=g).indices.tolist())  # the two non-zero columns
    [1, 3]
    """
    check_matrix(x)
    d = x.shape[1]
    check_int(k, "k", low=1, high=d)
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
    scores = column_scores(x)
    if selection == "top-k":
        indices = torch.sort(torch.topk(scores, k, sorted=False).indices).values
    else:
        indices = _sample_without_replacement(scores, k, generator)
    return BlockSelection(indices, scores, relative_residual(scores, indices))


def _sample_without_replacement(scores: torch.Tensor, k: int, generator: torch.Generator | None) -> torch.Tensor:
    """k distinct columns by exponential keys E_j / s_j (the k smallest win), sorted ascending."""
    top = float(scores.max())
    ratio = (scores / top).to(torch.float32) if top > 0 else torch.zeros(scores.shape, device=scores.device)
    if scores.device.type == "cpu":
        # numpy's PCG64 exponentials are several times faster than torch's on CPU; the seed
        # comes from the torch generator, so the draw is reproducible the same way.
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        keys = np.random.default_rng(seed).standard_exponential(scores.numel(), dtype=np.float32)
        r = ratio.numpy()
        available = int(np.count_nonzero(r))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            keys /= r  # columns of zero (or negligible) score get +inf keys: never among the k smallest
        if available >= k:
            fast = k_smallest(keys, k)
            if fast is not None:
                return fast
            return torch.from_numpy(np.sort(np.argpartition(keys, k - 1)[:k]).astype(np.int64))
    else:
        keys_t = torch.empty(scores.shape, dtype=torch.float32, device=scores.device)
        keys_t.exponential_(generator=generator)
        available = int(torch.count_nonzero(ratio))
        if available >= k:
            return torch.sort(torch.topk(keys_t / ratio, k, largest=False, sorted=False).indices).values
    # Too few columns carry weight: take them all, and the rest uniformly among the others.
    candidates = ratio > 0
    chosen = torch.nonzero(candidates).flatten()
    others = torch.nonzero(~candidates).flatten()
    pick = torch.randperm(others.numel(), generator=generator, device=scores.device)[: k - available]
    return torch.sort(torch.cat([chosen, others[pick]])).values


# Keys sampled to bracket the k-th smallest in :func:`k_smallest`.
_BRACKET_SAMPLE = 32768


def k_smallest(keys: np.ndarray, k: int) -> torch.Tensor | None:
    """Sorted positions of the ``k`` smallest of the 1-D ``keys``, or None when they are not unique.

    Brackets the k-th smallest value between two quantiles of a strided sample of the keys, takes
    every key below the bracket, and partitions only the few inside it (a Floyd-Rivest style
    selection): two vectorised passes over the keys instead of a full partition (2.4 ms against
    15 ms for ``np.argpartition`` and a sort at 1.16M keys). Returns None, so the caller can fall
    back to an exact partition, when the bracket misses (rare) or the k-th and (k+1)-th smallest
    keys tie, the one case where the set is not determined by the values: a set it returns is
    the same as any exact selection's.

    Examples
    --------
    >>> keys = np.random.default_rng(0).random(100_000, dtype=np.float32)
    >>> fast = k_smallest(keys, 1000)
    >>> bool((fast.numpy() == np.sort(np.argpartition(keys, 999)[:1000])).all())
    True
    """
    d = keys.shape[0]
    sample = keys[:: max(1, d // _BRACKET_SAMPLE)]
    s = sample.shape[0]
    q = k / d
    margin = 4.0 * math.sqrt(q * (1.0 - q) / s) + 2.0 / s  # four standard errors of the quantile
    lo, hi = math.floor((q - margin) * s), math.ceil((q + margin) * s)
    if lo < 0 or hi >= s:
        return None
    bracket = np.partition(sample, [lo, hi])
    below = keys < bracket[lo]
    n_below = int(np.count_nonzero(below))
    upto = keys <= bracket[hi]
    if not n_below < k <= int(np.count_nonzero(upto)):
        return None
    inside = torch.nonzero(torch.from_numpy(upto ^ below)).flatten().numpy()  # below is within upto
    values = keys[inside]
    r = k - n_below
    if r < values.shape[0]:
        kth = np.partition(values, [r - 1, r])
        if not kth[r - 1] < kth[r]:
            return None
        inside = inside[values <= kth[r - 1]]
    below[inside] = True
    return torch.nonzero(torch.from_numpy(below)).flatten()
