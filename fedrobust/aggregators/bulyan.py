"""Bulyan and the mean around the median (Meamed).

Bulyan is from El Mhamdi, Guerraoui and Rouault (2018), "The Hidden Vulnerability of Distributed
Learning in Byzantium" (ICML); Meamed from Xie, Koyejo and Gupta (2018), "Generalized
Byzantine-tolerant SGD". Meamed is Bulyan's second (coordinate-wise) stage applied to all rows.
"""

from __future__ import annotations

import torch

from ..core.checks import all_finite, check_int, check_matrix
from ._chunks import column_blocks
from ._gram import centred_gram, squared_distances
from .coordinate import coordinate_median

# Columns per block of the coordinate-wise stage: (rows x columns) about this many elements.
_BLOCK_ELEMENTS = 1 << 22


def mean_around_median(x: torch.Tensor, k: int) -> torch.Tensor:
    """Per coordinate, the mean of the ``k`` values closest to the coordinate-wise median.

    The median follows numpy's convention (mean of the two middle values for an even number of
    rows). Of values equally far from the median (``median ± r``), those of the lower row indices are
    kept, on every device (ByzFL's and Flower's ``argpartition`` leave that order unspecified). Column blocks bound the scratch memory; a block whose mean
    overflows the input's dtype (possible only when far rows are among the ``k`` kept) is redone in
    float64.

    Parameters
    ----------
    x : torch.Tensor
        Client vectors, shape (n, d).
    k : int
        Values averaged per coordinate, ``1 <= k <= n``.

    Returns
    -------
    torch.Tensor
        Shape (d,), in ``x``'s dtype and on its device.

    Examples
    --------
    >>> x = torch.tensor([[0.0, 10.0], [1.0, 11.0], [2.0, 13.0], [100.0, -50.0]])
    >>> mean_around_median(x, 2)  # medians 1.5 and 10.5
    tensor([ 1.5000, 10.5000])
    """
    check_matrix(x)
    n = x.shape[0]
    check_int(k, "k", low=1, high=n)
    out = torch.empty(x.shape[1], dtype=x.dtype, device=x.device)
    for start, block in column_blocks(x, _BLOCK_ELEMENTS):
        median = coordinate_median(block)
        # |x - median| may overflow to +inf in float32 for far rows: they still rank last.
        nearest = torch.sort((block - median).abs_(), dim=0, stable=True).indices[:k]
        values = block.gather(0, nearest)
        mean = values.mean(dim=0)
        if not all_finite(mean):
            mean = values.to(torch.float64).mean(dim=0).to(x.dtype)
        out[start : start + block.shape[1]] = mean
    return out


def meamed(x: torch.Tensor, f: int) -> torch.Tensor:
    """Meamed (Xie, Koyejo and Gupta, 2018, "Generalized Byzantine-tolerant SGD"): per coordinate,
    the mean of the ``n - f`` values closest to the coordinate-wise median.

    Matches ByzFL's ``Meamed`` (which also requires ``2f < n``).

    Parameters
    ----------
    x : torch.Tensor
        Client vectors, shape (n, d).
    f : int
        Assumed number of Byzantine rows, ``0 <= f`` and ``2f < n``.

    Returns
    -------
    torch.Tensor
        Shape (d,).

    Examples
    --------
    >>> x = torch.tensor([[1.0], [2.0], [3.0], [4.0], [1000.0]])
    >>> meamed(x, 1)  # median 3: the 4 closest are 1, 2, 3, 4
    tensor([2.5000])
    >>> meamed(x, 2)  # the 3 closest: 2, 3, 4
    tensor([3.])
    """
    check_matrix(x)
    n = x.shape[0]
    check_int(f, "f", low=0)
    if 2 * f >= n:
        raise ValueError(f"Meamed needs 2f < n, got f={f} with n={n} rows")
    return mean_around_median(x, n - f)


def bulyan_select(x: torch.Tensor, f: int) -> torch.Tensor:
    """Bulyan's first stage: the indices of the ``theta = n - 2f`` rows chosen by repeated Krum.

    Each pick is the row with the lowest Krum score among the rows not yet picked, the score being
    recomputed on that remaining set: the sum of the squared distances to its ``max(1, m - f - 2)``
    nearest other remaining rows (``m`` of them), as Flower's ``aggregate_krum`` counts them (the
    paper's ``m - f - 2`` would be zero near the end when f is small). Pairwise distances come from
    one scale-safe Gram matrix (:func:`~fedrobust.aggregators._gram.centred_gram`); each pick reads
    a sub-block of it. Ties go to the lowest index, as in Flower.

    Parameters
    ----------
    x : torch.Tensor
        Client vectors, shape (n, d).
    f : int
        Assumed number of Byzantine rows; Bulyan needs ``n >= 4f + 3``.

    Returns
    -------
    torch.Tensor
        int64 indices, shape (n - 2f,), in the order picked.

    Examples
    --------
    >>> x = torch.tensor([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0], [6.0], [60.0]])
    >>> bulyan_select(x, 1).tolist()  # rows 2, 3 and 4 tie at first: the lowest index wins
    [2, 4, 3, 1, 5, 0]
    """
    check_matrix(x)
    n = x.shape[0]
    check_int(f, "f", low=0)
    if n < 4 * f + 3:
        raise ValueError(f"Bulyan needs n >= 4f + 3 rows, got n={n} with f={f}")
    dist = squared_distances(centred_gram(x))
    dist.fill_diagonal_(float("inf"))
    remaining = torch.arange(n, device=x.device)
    chosen = []
    for _ in range(n - 2 * f):
        m = remaining.numel()
        block = dist.index_select(0, remaining).index_select(1, remaining)
        scores = torch.topk(block, min(max(1, m - f - 2), max(1, m - 1)), dim=1, largest=False).values.sum(dim=1)
        best = int(torch.argmin(scores))  # the first minimum
        chosen.append(remaining[best])
        remaining = torch.cat([remaining[:best], remaining[best + 1 :]])
    return torch.stack(chosen)


def bulyan(x: torch.Tensor, f: int) -> torch.Tensor:
    """Bulyan (El Mhamdi, Guerraoui and Rouault, 2018, "The Hidden Vulnerability of Distributed
    Learning in Byzantium"), over Krum.

    ``theta = n - 2f`` rows are chosen by repeated Krum (:func:`bulyan_select`); then, per
    coordinate, the aggregate is the mean of the ``beta = theta - 2f`` values of the chosen rows
    closest to their coordinate-wise median (:func:`mean_around_median`).

    Conventions (equal to Flower's ``aggregate_bulyan`` with its default inner rule
    ``aggregate_krum`` and ``to_keep = 0``): each Krum pick recomputes the scores on the rows not
    yet picked with the same ``f``, with ``max(1, m - f - 2)`` neighbours; the median of an even
    number of values is the mean of the two middle ones. ByzFL 0.0.11 has no Bulyan.

    Parameters
    ----------
    x : torch.Tensor
        Client vectors, shape (n, d).
    f : int
        Assumed number of Byzantine rows, ``n >= 4f + 3`` (``ValueError`` otherwise).

    Returns
    -------
    torch.Tensor
        Shape (d,).

    Examples
    --------
    >>> x = torch.tensor([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0], [6.0], [60.0]])
    >>> bulyan(x, 1)  # picks rows 0..5; median 2.5; the 4 closest: 1, 2, 3, 4
    tensor([2.5000])
    >>> bulyan(x, 0)  # f = 0: the mean
    tensor([10.1250])
    """
    chosen = bulyan_select(x, f)
    picked = x.index_select(0, chosen)
    return mean_around_median(picked, chosen.numel() - 2 * f)
