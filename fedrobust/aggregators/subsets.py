"""Rules that search every subset of ``n - f`` rows: minimum-diameter averaging and SMEA.

Both enumerate the ``C(n, f)`` ways to leave ``f`` rows out, which grows exponentially with ``f``;
each refuses (``ValueError``) a configuration with more subsets than its documented limit,
:data:`MDA_MAX_SUBSETS` or :data:`SMEA_MAX_SUBSETS`, chosen so that a call at the limit takes a few
seconds on two CPU cores. Everything after one scale-safe Gram matrix
(:func:`~fedrobust.aggregators._gram.centred_gram`) runs on n x n numbers, whatever ``d``.

Ties are broken as ByzFL 0.0.11 does: among the subsets with the smallest criterion, the first in
``itertools.combinations(range(n), n - f)`` order (lexicographic on the kept rows).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import numpy as np
import torch

from ..core.checks import check_int, check_matrix
from ._gram import centred_gram, combine, squared_distances

MDA_MAX_SUBSETS = 1_000_000
"""Most subsets (``C(n, f)``) minimum-diameter averaging enumerates (about 3 s on two cores)."""
SMEA_MAX_SUBSETS = 50_000
"""Most subsets SMEA enumerates (one small symmetric eigenproblem each: about 3 s on two cores)."""

# Subsets handled per vectorised chunk, and SMEA's bound on the Gram entries gathered per chunk.
_CHUNK = 1 << 15
_GATHER_ELEMENTS = 1 << 22
# Pairs tested per step when looking for a subset's largest remaining distance.
_PAIR_BLOCK = 32


def subset_count(n: int, f: int) -> int:
    """``C(n, f)``: the subsets of ``n - f`` rows out of ``n``.

    Examples
    --------
    >>> subset_count(10, 2), subset_count(20, 5)
    (45, 15504)
    """
    return math.comb(n, f)


def check_subsets(n: int, f: int, limit: int, rule: str) -> None:
    """Raise ``ValueError`` unless ``2f < n`` and ``C(n, f) <= limit``.

    Examples
    --------
    >>> check_subsets(10, 2, MDA_MAX_SUBSETS, "MDA")
    >>> check_subsets(40, 10, MDA_MAX_SUBSETS, "MDA")
    Traceback (most recent call last):
    ...
    ValueError: MDA enumerates all C(n, f) = C(40, 10) = 847660528 subsets of n - f rows, more than its limit of 1000000: lower f (rule-params f=...) or the clients per round
    """
    if 2 * f >= n:
        raise ValueError(f"{rule} needs 2f < n, got f={f} with n={n} rows")
    count = subset_count(n, f)
    if count > limit:
        raise ValueError(
            f"{rule} enumerates all C(n, f) = C({n}, {f}) = {count} subsets of n - f rows, more than its "
            f"limit of {limit}: lower f (rule-params f=...) or the clients per round"
        )


def _left_out(n: int, f: int, chunk: int = _CHUNK) -> Iterator[torch.Tensor]:
    """The ``f``-subsets of ``range(n)`` in lexicographic order, as (c, f) int64 chunks (c <= chunk)."""
    it = itertools.combinations(range(n), f)
    while True:
        flat = np.fromiter(itertools.chain.from_iterable(itertools.islice(it, chunk)), dtype=np.int64)
        if flat.size == 0:
            return
        yield torch.from_numpy(flat).view(-1, f)


def _best_subset(n: int, f: int, criterion, device: torch.device, chunk: int = _CHUNK) -> tuple[torch.Tensor, float]:
    """The kept rows (sorted) of the subset with the smallest ``criterion(out_mask)``, and its value.

    ``criterion`` maps a (c, n) bool mask of left-out rows to (c,) float64 values. Leaving out the
    lexicographically *last* ``f``-set among the minima keeps the lexicographically *first*
    ``(n - f)``-set (the complement reverses the order), which is ByzFL's choice.
    """
    best_value, best_out = math.inf, None
    for out in _left_out(n, f, chunk):
        out = out.to(device)
        mask = torch.zeros(out.shape[0], n, dtype=torch.bool, device=device)
        mask.scatter_(1, out, True)
        values = criterion(mask)
        low = float(values.min())
        if low <= best_value:
            last = int((values == low).nonzero()[-1])
            best_value, best_out = low, mask[last]
    return (~best_out).nonzero().flatten(), best_value


def _kept_mean(x: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    weights = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    weights[kept] = 1.0 / kept.numel()
    return combine(x, weights)


def minimum_diameter_subset(x: torch.Tensor, f: int) -> tuple[torch.Tensor, float]:
    """The ``n - f`` rows of smallest diameter (largest pairwise distance) and that diameter.

    Pairs are sorted by distance once; a subset's diameter is the distance of the first pair in
    that order with both rows kept, found for a chunk of subsets at once.

    Returns
    -------
    (torch.Tensor, float)
        The kept indices (sorted, int64) and the subset's diameter (Euclidean, float64).

    Examples
    --------
    >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [9.0, 9.0]])
    >>> kept, diameter = minimum_diameter_subset(x, 1)
    >>> kept.tolist(), round(diameter, 4)
    ([0, 1, 2], 1.4142)
    """
    check_matrix(x)
    n = x.shape[0]
    check_int(f, "f", low=0)
    check_subsets(n, f, MDA_MAX_SUBSETS, "MDA")
    if f == 0 or n < 2:
        return torch.arange(n, device=x.device), float(squared_distances(centred_gram(x)).max().sqrt())
    dist = squared_distances(centred_gram(x))
    i, j = torch.triu_indices(n, n, 1, device=x.device)
    pair_dist = dist[i, j]
    order = torch.argsort(pair_dist, descending=True, stable=True)
    i, j, pair_dist = i[order], j[order], pair_dist[order]

    def diameters(out: torch.Tensor) -> torch.Tensor:
        result = torch.empty(out.shape[0], dtype=torch.float64, device=out.device)
        pending = torch.arange(out.shape[0], device=out.device)
        start = 0
        while pending.numel():  # ends: n - f >= 2 rows are kept, so some pair is
            rows = out.index_select(0, pending)
            alive = ~(rows[:, i[start : start + _PAIR_BLOCK]] | rows[:, j[start : start + _PAIR_BLOCK]])
            found = alive.any(dim=1)
            first = alive.to(torch.uint8).argmax(dim=1)
            result[pending[found]] = pair_dist[start + first[found]]
            pending = pending[~found]
            start += _PAIR_BLOCK
        return result

    kept, squared = _best_subset(n, f, diameters, x.device)
    return kept, math.sqrt(squared)


def minimum_diameter_average(x: torch.Tensor, f: int) -> torch.Tensor:
    """Minimum-diameter averaging (MDA): the mean of the ``n - f`` rows whose largest pairwise
    distance is smallest.

    From El Mhamdi, Guerraoui, Guirguis, Hoang and Rouault (2020), "Genuinely Distributed Byzantine
    Machine Learning" (PODC), the citation ByzFL gives for its ``MDA``; the rule goes back to Rousseeuw's
    minimum-volume estimators. Exhaustive over the ``C(n, f)`` subsets (:data:`MDA_MAX_SUBSETS` at most,
    ``ValueError`` beyond); ties go to the first subset in ``itertools.combinations`` order, as in ByzFL.

    Parameters
    ----------
    x : torch.Tensor
        Client vectors, shape (n, d).
    f : int
        Rows left out, ``2f < n``.

    Returns
    -------
    torch.Tensor
        Shape (d,).

    Examples
    --------
    >>> x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    >>> minimum_diameter_average(x, 1)
    tensor([2.5000, 3.5000, 4.5000])
    """
    kept, _ = minimum_diameter_subset(x, f)
    return _kept_mean(x, kept)


def smea_subset(x: torch.Tensor, f: int) -> tuple[torch.Tensor, float]:
    """The ``n - f`` rows whose empirical covariance has the smallest largest eigenvalue, and that
    eigenvalue.

    The covariance ``(1/k) sum (x_i - mu)(x_i - mu)^T`` of k rows is d x d and never formed: its
    nonzero eigenvalues are those of the k x k doubly centred Gram matrix ``(1/k) H K H``, taken
    from one scale-safe Gram matrix of all rows and solved exactly (``torch.linalg.eigvalsh``).

    Returns
    -------
    (torch.Tensor, float)
        The kept indices (sorted, int64) and the largest eigenvalue of their covariance.

    Examples
    --------
    >>> x = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 1.0], [9.0, 9.0]])
    >>> kept, top = smea_subset(x, 1)
    >>> kept.tolist(), round(top, 4)
    ([0, 1, 2], 0.9562)
    """
    check_matrix(x)
    n = x.shape[0]
    check_int(f, "f", low=0)
    check_subsets(n, f, SMEA_MAX_SUBSETS, "SMEA")
    gram = centred_gram(x)
    k = n - f
    columns = torch.arange(n, device=x.device)

    def top_eigenvalues(out: torch.Tensor) -> torch.Tensor:
        kept = columns.expand(out.shape[0], n)[~out].view(-1, k)
        g = gram[kept[:, :, None], kept[:, None, :]]
        g = g - g.mean(dim=1, keepdim=True) - g.mean(dim=2, keepdim=True) + g.mean(dim=(1, 2), keepdim=True)
        return torch.linalg.eigvalsh(g)[:, -1] / k

    if f == 0:
        return columns, float(top_eigenvalues(torch.zeros(1, n, dtype=torch.bool, device=x.device))[0])
    return _best_subset(n, f, top_eigenvalues, x.device, chunk=max(1, min(_CHUNK, _GATHER_ELEMENTS // (k * k))))


def smea(x: torch.Tensor, f: int) -> torch.Tensor:
    """Smallest maximum eigenvalue averaging (SMEA): the mean of the ``n - f`` rows whose empirical
    covariance has the smallest largest eigenvalue.

    From Allouah, Guerraoui, Gupta, Pinot and Stephan (2023), "On the Privacy-Robustness-Utility
    Trilemma in Distributed Learning" (ICML). Exhaustive over the ``C(n, f)`` subsets
    (:data:`SMEA_MAX_SUBSETS` at most, ``ValueError`` beyond).

    Convention difference: ByzFL 0.0.11's ``SMEA`` estimates each subset's largest eigenvalue with a
    single power-iteration step from a fresh random vector, so its choice is random unless one
    subset is clearly best (and exact for d = 1); here the eigenvalue is exact, which is the
    paper's definition. Ties go to the first subset in ``itertools.combinations`` order, as in ByzFL.

    Parameters
    ----------
    x : torch.Tensor
        Client vectors, shape (n, d).
    f : int
        Rows left out, ``2f < n``.

    Returns
    -------
    torch.Tensor
        Shape (d,).

    Examples
    --------
    >>> x = torch.tensor([[1.0], [2.0], [4.0], [50.0]])
    >>> smea(x, 1)
    tensor([2.3333])
    """
    kept, _ = smea_subset(x, f)
    return _kept_mean(x, kept)
