"""Clustering and filtering defenses: Divide-and-Conquer, SignGuard and clipped clustering.

- :func:`dnc`: Shejwalkar and Houmansadr (2021), "Manipulating the Byzantine: Optimizing Model
  Poisoning Attacks and Defenses for Federated Learning" (NDSS): rows scored by their projection
  on the top singular vector of the centred rows, on a random subset of coordinates.
- :func:`signguard`: Xu, Huang, Zhang, Hu, Zhu and Jiang (2022), "SignGuard: Byzantine-robust
  Federated Learning through Collaborative Malicious Gradient Filtering" (ICDCS): a norm filter
  and a clustering of sign statistics, then the mean of the survivors clipped to the median norm.
- :func:`clipped_clustering`: Li, Ngai and Voigt (2023), "An Experimental Study of Byzantine-Robust
  Aggregation Schemes in Federated Learning" (IEEE Transactions on Big Data), as Blades implements
  it: rows clipped to a norm threshold, split in two by agglomerative clustering of their cosine
  distances, the larger cluster averaged.

Each function returns the aggregate and the indices of the rows it averaged; the rules of
:mod:`fedrobust.aggregators.rules_clustering` wrap them.

**Scale safety.** Every row may hold any finite float32 value. Norms come from
:func:`~fedrobust.aggregators._gram.row_norms` (float64); DnC's centred Gram matrix and cosines
are formed in float64 column block by column block (float64 holds any square of a float32 value
times any realistic ``d``), cosines from unit rows (entries at most 1); sign statistics do not
depend on magnitudes at all; and every average goes through
:func:`~fedrobust.aggregators._gram.combine` (float64 where float32 would round or overflow).
scikit-learn only ever sees float64 features in [0, 1] (sign fractions) or [0, 2] (cosine
distances).

**Ties.** When two clusters are equally large, the one holding the most central row (the least
total distance to all rows; the lowest index among equals) is kept.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from ..core.checks import check_int, check_matrix, check_nonnegative, check_real
from ._chunks import BLOCK_ELEMENTS, column_blocks
from ._gram import combine, row_norms

__all__ = [
    "CLUSTERINGS",
    "LINKAGES",
    "FilterResult",
    "SignGuardResult",
    "clipped_clustering",
    "cosine_distances",
    "dnc",
    "dnc_removed",
    "dnc_scores",
    "largest_cluster",
    "median",
    "sign_features",
    "signguard",
]

#: SignGuard's clusterings of the sign statistics: Blades' ``KMeans(2)`` or the paper's MeanShift.
CLUSTERINGS = ("kmeans", "meanshift")
#: Linkages of clipped clustering (those Blades accepts).
LINKAGES = ("average", "single")
#: Seed of SignGuard's KMeans (Blades' ``random_state=0``; the restarts make the result stable).
KMEANS_RANDOM_STATE = 0
KMEANS_RESTARTS = 10
#: MeanShift's bandwidth: scikit-learn's ``estimate_bandwidth`` at this quantile (over all rows).
MEANSHIFT_QUANTILE = 0.5


class FilterResult(NamedTuple):
    """What :func:`dnc` and :func:`clipped_clustering` return."""

    aggregate: torch.Tensor
    """Shape (d,), in the rows' dtype and device."""
    kept: torch.Tensor
    """The indices of the rows averaged, ascending (int64, on the rows' device)."""


class SignGuardResult(NamedTuple):
    """What :func:`signguard` returns."""

    aggregate: torch.Tensor
    """Shape (d,), in the rows' dtype and device."""
    kept: torch.Tensor
    """The indices of the rows averaged, ascending (int64)."""
    norm_kept: torch.Tensor
    """Which rows pass the norm filter (bool, shape (n,))."""
    sign_kept: torch.Tensor
    """Which rows are in the largest sign cluster (bool, shape (n,))."""
    median_norm: float
    """The median row norm ``M`` the survivors are clipped to."""


# ------------------------------------------------------------------------------------------ helpers
def median(values: torch.Tensor) -> float:
    """The median of a 1-D tensor, numpy's convention (the mean of the two middle values for an
    even count), as a float.

    Examples
    --------
    >>> median(torch.tensor([3.0, 1.0, 2.0])), median(torch.tensor([4.0, 1.0, 3.0, 2.0]))
    (2.0, 2.5)
    """
    s = values.reshape(-1).to(torch.float64).sort().values
    m = s.numel()
    if m == 0:
        raise ValueError("the median of no values is undefined")
    mid = m // 2
    return float(s[mid]) if m % 2 else 0.5 * float(s[mid - 1]) + 0.5 * float(s[mid])


def _sampled_columns(d: int, k: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor | None:
    """``k`` of the ``d`` column indices drawn without replacement (ascending), or None for all."""
    if k >= d:
        return None
    where = generator.device if generator is not None else device
    return torch.randperm(d, generator=generator, device=where)[:k].sort().values.to(device)


def _columns(x: torch.Tensor, columns: torch.Tensor | None) -> torch.Tensor:
    return x if columns is None else x.index_select(1, columns)


def _mean_of(x: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """The mean of the rows in ``mask`` (each times its ``weights`` entry), by :func:`combine`."""
    coefficients = mask.to(torch.float64)
    if weights is not None:
        coefficients = coefficients * weights
    return combine(x, coefficients / float(mask.sum()))


def _central_index(distances: np.ndarray, members: np.ndarray) -> tuple[float, int]:
    """(total distance, index) of the most central member (least total distance to all rows)."""
    totals = distances.sum(axis=1)
    idx = np.flatnonzero(members)
    best = idx[np.argmin(totals[idx])]
    return float(totals[best]), int(best)


def largest_cluster(labels: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """The boolean mask of the largest cluster of ``labels``; on a tie, the cluster holding the
    most central row (the least total distance to all rows, by ``distances``; lowest index first).
    Label -1 marks rows in no cluster (MeanShift's orphans); with no other label all rows count.

    Examples
    --------
    >>> d = np.abs(np.subtract.outer([0.0, 1.0, 5.0, 6.0], [0.0, 1.0, 5.0, 6.0]))
    >>> largest_cluster(np.array([0, 0, 1, 1]), d).tolist()  # a tie: rows 1 and 2 are central (total 10)
    [True, True, False, False]
    >>> largest_cluster(np.array([1, 0, 0, 0]), d).tolist()
    [False, True, True, True]
    """
    if bool((labels < 0).all()):
        return np.ones(labels.shape, dtype=bool)
    values, counts = np.unique(labels[labels >= 0], return_counts=True)
    candidates = values[counts == counts.max()]
    if len(candidates) == 1:
        return labels == candidates[0]
    best = min(candidates, key=lambda v: _central_index(distances, labels == v))
    return labels == best


# -------------------------------------------------------------------------------------------- DnC
def dnc_scores(x: torch.Tensor, columns: torch.Tensor | None = None, block_elements: int = BLOCK_ELEMENTS) -> torch.Tensor:
    """DnC's outlier scores ``s_i = <x_i − μ, v>^2`` on the given columns (all when None).

    ``μ`` is the mean row and ``v`` the top right singular vector of the centred rows ``X − μ``.
    With ``K = (X − μ)(X − μ)^T = U Λ U^T`` the scores are ``λ_max · u_i^2`` (``u`` the top
    eigenvector of ``K``): computed from the (n, n) Gram matrix, accumulated in float64 column
    block by column block, and divided by its largest entry first (the ranking is all DnC uses).
    Float64, shape (n,), relative to an unspecified positive unit.

    Examples
    --------
    >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [9.0, 9.0]])
    >>> s = dnc_scores(x)  # mean (2.2, 2.2), v = (1, 1) / sqrt(2): s = (x_i1 + x_i2 - 4.4)^2 / 2
    >>> [round(v, 4) for v in (s / s.max()).tolist()]  # 9.68, 5.78, 5.78, 2.88, 92.48 over 92.48
    [0.1047, 0.0625, 0.0625, 0.0311, 1.0]
    """
    check_matrix(x)
    sub = _columns(x, columns)
    n = x.shape[0]
    gram = torch.zeros(n, n, dtype=torch.float64, device=x.device)
    for _, block in column_blocks(sub, block_elements):
        b = block.to(torch.float64)
        b = b - b.mean(dim=0, keepdim=True)
        gram += b @ b.T
    top = float(gram.abs().max())
    if top == 0.0:  # every row alike on these columns: no direction stands out
        return torch.zeros(n, dtype=torch.float64, device=x.device)
    gram /= top
    eigenvalues, eigenvectors = torch.linalg.eigh(gram)
    return eigenvalues[-1].clamp(min=0.0) * eigenvectors[:, -1].pow(2)


def dnc_removed(f: int, c: float) -> int:
    """The rows DnC removes per iteration, ``floor(c · f)`` (Blades' ``int(filter_frac · f)``).

    Examples
    --------
    >>> dnc_removed(2, 1.0), dnc_removed(3, 1.5), dnc_removed(5, 0.0)
    (2, 4, 0)
    """
    return int(math.floor(c * f + 1e-9))


def dnc(
    x: torch.Tensor,
    f: int,
    *,
    c: float = 1.0,
    subsample: int = 10_000,
    iterations: int = 1,
    generator: torch.Generator | None = None,
    block_elements: int = BLOCK_ELEMENTS,
) -> FilterResult:
    """Divide and Conquer (Shejwalkar and Houmansadr, 2021, "Manipulating the Byzantine:
    Optimizing Model Poisoning Attacks and Defenses for Federated Learning", NDSS, Algorithm 2).

    Each of ``iterations`` times: draw ``b = min(d, subsample)`` coordinates without replacement
    (all of them, with no draw, when ``b = d``), score every row by :func:`dnc_scores` there and
    keep the ``n − floor(c · f)`` rows of lowest score (equal scores: lower index first). The
    aggregate is the mean of the rows kept in every iteration. That intersection may be empty
    with several iterations; then the rows kept in the most iterations are averaged (the
    intersection is the special case "kept in all of them", so the rule never fails).

    Parameters
    ----------
    x : torch.Tensor
        Client vectors, shape (n, d), floating point.
    f : int
        Assumed Byzantine rows, ``floor(c · f) < n``.
    c : float
        Filtering fraction ``c >= 0`` (the paper's and Blades' ``filter_frac``; the paper's
        default is 1).
    subsample : int
        Coordinates per iteration ``b >= 1`` (the paper's and Blades' 10000).
    iterations : int
        Draws ``>= 1`` (the paper's ``niters``; Blades' default 5).
    generator : torch.Generator, optional
        Draws the coordinates (on its own device); torch's global RNG when omitted.
    block_elements : int
        Size of the column blocks of the Gram computation.

    Returns
    -------
    FilterResult
        The mean of the kept rows and their indices.

    Raises
    ------
    ValueError
        If ``floor(c · f) >= n`` (no row would be left) or an argument is out of range.

    Examples
    --------
    Two rows far out along one direction are the two largest scores and are dropped:

    >>> x = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [20.0, 20.0], [21.0, 19.0]])
    >>> out = dnc(x, 2)
    >>> out.kept.tolist(), out.aggregate.tolist()
    ([0, 1, 2, 3], [0.5, 0.5])
    """
    check_matrix(x)
    n, d = x.shape
    check_int(f, "f", low=0)
    c = check_nonnegative(c, "c")
    check_int(subsample, "subsample", low=1)
    check_int(iterations, "iterations", low=1)
    removed = dnc_removed(f, c)
    if removed >= n:
        raise ValueError(f"DnC removes floor(c · f) = {removed} rows per iteration and needs fewer than n={n}")
    counts = torch.zeros(n, dtype=torch.int64, device=x.device)
    for _ in range(iterations):
        columns = _sampled_columns(d, subsample, generator, x.device)
        scores = dnc_scores(x, columns, block_elements)
        good = torch.argsort(scores, stable=True)[: n - removed]
        counts[good] += 1
        if columns is None and removed == 0:
            break
    kept_mask = counts == counts.max()
    kept = torch.nonzero(kept_mask).flatten()
    return FilterResult(_mean_of(x, kept_mask), kept)


# -------------------------------------------------------------------------------------- SignGuard
def sign_features(x: torch.Tensor, columns: torch.Tensor | None = None, block_elements: int = BLOCK_ELEMENTS) -> np.ndarray:
    """Per row, the fractions of positive, zero and negative entries on ``columns`` (all when
    None): float64, shape (n, 3), rows summing to one.

    Examples
    --------
    >>> sign_features(torch.tensor([[1.0, -2.0, 0.0, 3.0], [-3e38, -1.0, -2.0, 0.0]])).tolist()
    [[0.5, 0.25, 0.25], [0.0, 0.25, 0.75]]
    """
    check_matrix(x)
    sub = _columns(x, columns)
    n, b = sub.shape
    positive = torch.zeros(n, dtype=torch.int64, device=x.device)
    negative = torch.zeros(n, dtype=torch.int64, device=x.device)
    for _, block in column_blocks(sub, block_elements):
        positive += (block > 0).sum(dim=1)
        negative += (block < 0).sum(dim=1)
    counts = torch.stack([positive, b - positive - negative, negative], dim=1)
    return counts.cpu().numpy().astype(np.float64) / b


def _feature_distances(features: np.ndarray) -> np.ndarray:
    return np.sqrt(((features[:, None, :] - features[None, :, :]) ** 2).sum(axis=2))


def _sign_clusters(features: np.ndarray, clustering: str) -> np.ndarray:
    """Cluster labels of the sign features (one cluster when fewer than two distinct rows)."""
    n = features.shape[0]
    distinct, inverse = np.unique(features, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    if len(distinct) < 2:
        return np.zeros(n, dtype=np.int64)
    if clustering == "kmeans":
        from sklearn.cluster import KMeans

        model = KMeans(n_clusters=2, n_init=KMEANS_RESTARTS, random_state=KMEANS_RANDOM_STATE)
        return model.fit(features).labels_
    from sklearn.cluster import MeanShift, estimate_bandwidth

    bandwidth = float(estimate_bandwidth(features, quantile=MEANSHIFT_QUANTILE))
    if not bandwidth > 0.0:  # most rows share their features with many others: group equal rows
        return inverse.astype(np.int64)
    return MeanShift(bandwidth=bandwidth, bin_seeding=True, cluster_all=False).fit(features).labels_


def signguard(
    x: torch.Tensor,
    *,
    lower: float = 0.1,
    upper: float = 3.0,
    fraction: float = 1.0,
    clustering: str = "kmeans",
    generator: torch.Generator | None = None,
    block_elements: int = BLOCK_ELEMENTS,
) -> SignGuardResult:
    """SignGuard (Xu, Huang, Zhang, Hu, Zhu and Jiang, 2022, "SignGuard: Byzantine-robust
    Federated Learning through Collaborative Malicious Gradient Filtering", ICDCS, Algorithm 1).

    1. Norm filter: with ``M`` the median row norm, ``S1 = {i : lower <= ||x_i|| / M <= upper}``.
    2. Sign clustering: per row the fractions of positive, zero and negative entries on
       ``k = max(1, round(fraction · d))`` coordinates drawn without replacement (all of them,
       with no draw, for ``fraction = 1``), clustered by ``KMeans(2)`` (Blades) or MeanShift
       (the paper; bandwidth by scikit-learn's ``estimate_bandwidth`` at quantile 0.5 over all
       rows, bin seeding, rows near no mode left out, as FLPoison's MeanShift option); ``S2`` is
       the largest cluster.
    3. The aggregate is ``mean_{i in S} x_i · min(1, M / ||x_i||)`` over ``S = S1 ∩ S2``, or over
       ``S1`` when the intersection is empty. ``M = 0`` (most rows zero) gives zero.

    Parameters
    ----------
    x : torch.Tensor
        Client vectors, shape (n, d), floating point.
    lower, upper : float
        The norm filter's bounds ``0 <= lower <= 1 <= upper`` (the paper's L = 0.1, R = 3.0).
    fraction : float
        Fraction of the coordinates the sign statistics use, in (0, 1].
    clustering : {"kmeans", "meanshift"}
        How the sign features are clustered.
    generator : torch.Generator, optional
        Draws the coordinates when ``fraction < 1`` (torch's global RNG when omitted).
    block_elements : int
        Size of the column blocks of the sign counts.

    Returns
    -------
    SignGuardResult

    Examples
    --------
    Six rows mostly positive; one mostly negative row and one of 100 times the median norm:

    >>> x = torch.tensor([[1.0, 2.0, 1.0, -1.0], [2.0, 1.0, 1.0, -1.0], [1.0, 1.0, 2.0, -1.0],
    ...                   [1.0, 1.0, 1.0, -2.0], [2.0, 2.0, 1.0, -1.0], [1.0, 2.0, 2.0, -1.0],
    ...                   [-1.0, -1.0, -1.0, 1.0], [200.0, 200.0, 200.0, -200.0]])
    >>> out = signguard(x)
    >>> out.kept.tolist(), out.norm_kept.tolist()[-2:], out.sign_kept.tolist()[-2:]
    ([0, 1, 2, 3, 4, 5], [True, False], [False, True])
    """
    check_matrix(x)
    n, d = x.shape
    lower = check_nonnegative(lower, "lower")
    upper = check_real(upper, "upper")
    if not lower <= 1.0 <= upper:
        raise ValueError(f"SignGuard's norm bounds need lower <= 1 <= upper (the median row passes), got {lower} and {upper}")
    fraction = check_real(fraction, "fraction")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction (of the coordinates for the sign statistics) must lie in (0, 1], got {fraction}")
    if clustering not in CLUSTERINGS:
        raise ValueError(f"clustering must be one of {CLUSTERINGS}, got {clustering!r}")
    norms = row_norms(x, block_elements)
    m = median(norms)
    columns = _sampled_columns(d, max(1, min(d, round(fraction * d))), generator, x.device)
    features = sign_features(x, columns, block_elements)
    labels = _sign_clusters(features, clustering)
    sign_kept = torch.from_numpy(largest_cluster(labels, _feature_distances(features))).to(x.device)
    if m == 0.0:
        norm_kept = norms == 0.0
        kept = torch.nonzero(norm_kept & sign_kept).flatten()
        return SignGuardResult(torch.zeros(d, dtype=x.dtype, device=x.device), kept, norm_kept, sign_kept, 0.0)
    ratio = norms / m
    norm_kept = (ratio >= lower) & (ratio <= upper)
    mask = norm_kept & sign_kept
    if not bool(mask.any()):
        mask = norm_kept  # never empty: the median row (the upper middle one for even n) passes
    clip = torch.where(norms > m, m / norms.clamp(min=torch.finfo(torch.float64).tiny), torch.ones_like(norms))
    return SignGuardResult(_mean_of(x, mask, clip), torch.nonzero(mask).flatten(), norm_kept, sign_kept, m)


# ----------------------------------------------------------------------------- clipped clustering
def cosine_distances(x: torch.Tensor, norms: torch.Tensor | None = None, block_elements: int = BLOCK_ELEMENTS) -> torch.Tensor:
    """``1 − cos(x_i, x_j)`` for all pairs, float64, shape (n, n), zero on the diagonal.

    The cosines are inner products of the unit rows, formed in float64 block by block (entries at
    most 1, so nothing overflows). A zero row has cosine 0 with every row (distance 1), as
    ``torch.nn.functional.cosine_similarity`` gives it.

    Examples
    --------
    >>> x = torch.tensor([[1.0, 0.0], [3e38, 3e38], [-2.0, 0.0], [0.0, 0.0]])
    >>> [[round(v, 4) for v in row] for row in cosine_distances(x).tolist()]
    [[0.0, 0.2929, 2.0, 1.0], [0.2929, 0.0, 1.7071, 1.0], [2.0, 1.7071, 0.0, 1.0], [1.0, 1.0, 1.0, 0.0]]
    """
    check_matrix(x)
    if norms is None:
        norms = row_norms(x, block_elements)
    inverse = torch.where(norms > 0, 1.0 / norms.clamp(min=torch.finfo(torch.float64).tiny), torch.zeros_like(norms))
    n = x.shape[0]
    cosines = torch.zeros(n, n, dtype=torch.float64, device=x.device)
    for _, block in column_blocks(x, block_elements):
        unit = block.to(torch.float64) * inverse[:, None]
        cosines += unit @ unit.T
    distances = (1.0 - cosines.clamp_(min=-1.0, max=1.0)).clamp_(min=0.0)
    distances.fill_diagonal_(0.0)
    return distances


def clipped_clustering(
    x: torch.Tensor,
    threshold: float,
    *,
    linkage: str = "average",
    norms: torch.Tensor | None = None,
    block_elements: int = BLOCK_ELEMENTS,
) -> FilterResult:
    """Clipped clustering (Li, Ngai and Voigt, 2023, "An Experimental Study of Byzantine-Robust
    Aggregation Schemes in Federated Learning", IEEE Transactions on Big Data), as in Blades'
    ``Clippedclustering``.

    Every row is clipped to norm ``threshold`` (``x_i · min(1, threshold / ||x_i||)``); the rows
    are split into two clusters by agglomerative clustering of their cosine distances
    (:func:`cosine_distances`; clipping leaves them unchanged) and the mean of the clipped rows
    of the larger cluster is the aggregate. One row is its own aggregate (clipped).

    Parameters
    ----------
    x : torch.Tensor
        Client vectors, shape (n, d), floating point.
    threshold : float
        The clipping norm ``>= 0`` (the rule: the median of all row norms seen so far).
    linkage : {"average", "single"}
        The clustering's linkage.
    norms : torch.Tensor, optional
        The rows' norms when known (float64, shape (n,)).
    block_elements : int
        Size of the column blocks of the cosine computation.

    Examples
    --------
    Four rows point one way, two another (one of them far out): the four are kept, each clipped
    to norm 2 (only ``(4, 0)`` is longer; it becomes ``(2, 0)``):

    >>> x = torch.tensor([[1.0, 0.1], [1.0, -0.1], [4.0, 0.0], [1.0, 0.0], [-1.0, 5.0], [-1e30, 5e30]])
    >>> out = clipped_clustering(x, 2.0)
    >>> out.kept.tolist(), [round(v, 4) for v in out.aggregate.tolist()]
    ([0, 1, 2, 3], [1.25, 0.0])
    """
    check_matrix(x)
    threshold = check_nonnegative(threshold, "threshold")
    if linkage not in LINKAGES:
        raise ValueError(f"linkage must be one of {LINKAGES}, got {linkage!r}")
    if norms is None:
        norms = row_norms(x, block_elements)
    n = x.shape[0]
    clip = torch.where(norms > threshold, threshold / norms.clamp(min=torch.finfo(torch.float64).tiny), torch.ones_like(norms))
    if n == 1:
        return FilterResult(_mean_of(x, torch.ones(1, dtype=torch.bool, device=x.device), clip),
                            torch.zeros(1, dtype=torch.int64, device=x.device))
    from sklearn.cluster import AgglomerativeClustering

    distances = cosine_distances(x, norms, block_elements).cpu().numpy()
    labels = AgglomerativeClustering(n_clusters=2, metric="precomputed", linkage=linkage).fit(distances).labels_
    mask = torch.from_numpy(largest_cluster(labels, distances)).to(x.device)
    return FilterResult(_mean_of(x, mask, clip), torch.nonzero(mask).flatten())
