"""Rules registered by this module (see :mod:`fedrobust.aggregators.rules`): clustering and
filtering defenses that drop the rows standing apart and average the others
(:mod:`fedrobust.aggregators.clustering`).

========================= ==================================================================
``dnc``                   Divide-and-Conquer (Shejwalkar and Houmansadr, 2021): top singular
                          direction on sampled coordinates; needs ``floor(c · f) < n``
``signguard``             SignGuard (Xu et al., 2022): norm filter, sign-statistics clustering,
                          mean clipped to the median norm
``clipped-clustering``    clipping to the median of all norms seen, 2-cluster agglomerative
                          clustering of cosine distances (Li, Ngai and Voigt, 2023, via Blades)
========================= ==================================================================

All three are unweighted and scale-equivariant: they run on ``rows`` and return the given
``scale`` (clipped clustering keeps its record of norms in the units of ``rows``). Norms, Gram
matrices and cosines come from float64 block computations, so rows up to 3.4e38 can neither
overflow them nor move the result. Their metric ``kept_clients`` counts the rows averaged.

Examples
--------
>>> rows = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [20.0, 20.0], [21.0, 19.0]])
>>> step = DnCRule(f=2)(rows, None, server_round=1)
>>> step.update, step.metrics
(tensor([0.5000, 0.5000]), {'dnc_f': 2, 'kept_clients': 4})
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..core.checks import check_int, check_nonnegative, check_positive, check_real, check_seed
from ..core.rng import stream_generator
from ._gram import row_norms
from .clustering import CLUSTERINGS, LINKAGES, clipped_clustering, dnc, dnc_removed, median, signguard
from .rules import ByzantineCountRule, Rule, RuleStep, register_rule

__all__ = ["DnCRule", "SignGuardRule", "ClippedClusteringRule"]


@register_rule
@dataclass(frozen=True)
class DnCRule(ByzantineCountRule):
    """Divide-and-Conquer (:func:`~fedrobust.aggregators.clustering.dnc`; Shejwalkar and
    Houmansadr, 2021, "Manipulating the Byzantine: Optimizing Model Poisoning Attacks and Defenses
    for Federated Learning", NDSS): per iteration, on ``min(d, subsample)`` coordinates drawn
    without replacement, the ``floor(c · f)`` rows projecting farthest along the top singular
    vector of the centred rows are dropped; the rows kept in every iteration are averaged (in
    the most iterations, should no row be kept in all).

    Defaults: ``subsample = 10000`` and ``c = 1`` as the paper and Blades (``sub_dim``,
    ``filter_frac``); ``iterations = 1``, where Blades' ``num_iters`` is 5 and FLPoison's DnC
    takes 5 iterations of ``0.2 · d`` coordinates: with ``d <= subsample`` every draw is all
    the coordinates, and further iterations would repeat the first (fedrobust then stops after
    one). Blades draws the coordinates with torch's global RNG (FLPoison with numpy's); here
    they come from the stream ``dnc-coordinates`` of ``(seed, round)``, on the rows' device.
    Blades and FLPoison take an SVD of the (n, b) sub-matrix; the scores here come from the
    eigendecomposition of its (n, n) centred Gram matrix, the same numbers. Blades, FLPoison and
    fedrobust alike average the intersection of the kept sets (Blades would average nothing
    were it empty; fedrobust then averages the rows kept most often).

    Parameters
    ----------
    f, byzantine_fraction, clients_per_round
        As for :class:`~fedrobust.aggregators.rules.ByzantineCountRule`; capped for a round of
        ``n`` rows so that ``floor(c · f) < n`` (metric ``dnc_f``).
    subsample : int
        Coordinates per iteration (``rule-params``: ``subsample``), ``>= 1``.
    iterations : int
        Draws (``rule-params``: ``iterations``), ``>= 1``.
    c : float
        Filtering fraction ``>= 0`` (``rule-params``: ``c``): ``floor(c · f)`` rows dropped per draw.
    seed : int
        Seeds the coordinate draws with the round (run key ``seed``).
    """

    name: ClassVar[str] = "dnc"
    subsample: int = 10_000
    iterations: int = 1
    c: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int(self.subsample, "subsample", low=1)
        check_int(self.iterations, "iterations", low=1)
        check_nonnegative(self.c, "c")
        check_seed(self.seed)

    def generator(self, server_round: int, device: torch.device | str) -> torch.Generator:
        """The round's coordinate-draw generator, seeded by ``(seed, round)``."""
        return stream_generator("dnc-coordinates", self.seed, server_round, device=device)

    def __call__(
        self, rows: torch.Tensor, state: torch.Tensor | None, server_round: int, scale: float = 1.0
    ) -> RuleStep:
        n = rows.shape[0]
        f = self.f_for(n)
        while f > 0 and dnc_removed(f, float(self.c)) >= n:
            f -= 1
        out = dnc(rows, f, c=float(self.c), subsample=self.subsample, iterations=self.iterations,
                  generator=self.generator(server_round, rows.device))
        return RuleStep(out.aggregate, scale, None, {"dnc_f": f, "kept_clients": int(out.kept.numel())})


@register_rule
@dataclass(frozen=True)
class SignGuardRule(Rule):
    """SignGuard (:func:`~fedrobust.aggregators.clustering.signguard`; Xu, Huang, Zhang, Hu, Zhu
    and Jiang, 2022, "SignGuard: Byzantine-robust Federated Learning through Collaborative
    Malicious Gradient Filtering", ICDCS): the rows whose norm lies within ``[lower, upper]``
    times the median norm ``M`` and whose sign statistics fall in the largest cluster, averaged
    after clipping each to norm ``M``.

    Blades' ``Signguard`` (the default here follows it where the paper leaves a choice):
    ``KMeans(n_clusters=2, random_state=0)`` on the fractions of positive, negative and zero
    entries over all coordinates, the cluster with more rows kept, L = 0.1, R = 3.0. Differences:

    - Blades clips every row to ``M`` *before* the norm filter and filters the clipped norms, so
      its upper bound never rejects anything; fedrobust filters the rows' own norms, as the
      paper's Algorithm 1 does, and clips the survivors.
    - KMeans runs with 10 restarts (Blades takes scikit-learn's default, 1 restart since 1.4);
      ``clustering = "meanshift"`` clusters by MeanShift, as the paper does (FLPoison's MeanShift
      settings: quantile 0.5, bin seeding, orphans in no cluster). FLPoison's default is
      ``DBSCAN(eps=0.05, min_samples=3)`` on features divided by their largest value over the
      rows, from a contiguous window of 10% of the coordinates, with strict norm bounds; not
      offered here.
    - An empty intersection (Blades would average nothing) falls back to the norm filter's rows.
    - Blades' tie between two equal clusters keeps KMeans' label 0; fedrobust the cluster holding
      the most central row.

    Parameters
    ----------
    lower, upper : float
        The norm filter's bounds relative to the median norm (``rule-params``: ``lower``,
        ``upper``), ``0 <= lower <= 1 <= upper``.
    sign_fraction : float
        Fraction of the coordinates the sign statistics use (``rule-params``: ``sign_fraction``),
        in (0, 1]: 1 (default, as Blades) reads all of them and draws nothing; below 1 they are
        drawn each round from the stream ``signguard-coordinates`` of ``(seed, round)``.
    clustering : {"kmeans", "meanshift"}
        ``rule-params``: ``clustering``.
    seed : int
        Seeds the coordinate draws with the round (run key ``seed``).
    """

    name: ClassVar[str] = "signguard"
    lower: float = 0.1
    upper: float = 3.0
    sign_fraction: float = 1.0
    clustering: str = "kmeans"
    seed: int = 0

    def __post_init__(self) -> None:
        lower, upper = check_nonnegative(self.lower, "lower"), check_real(self.upper, "upper")
        if not lower <= 1.0 <= upper:
            raise ValueError(f"signguard needs lower <= 1 <= upper (the median row must pass), got lower={self.lower}, upper={self.upper}")
        if not 0.0 < check_positive(self.sign_fraction, "sign_fraction") <= 1.0:
            raise ValueError(f"sign_fraction must lie in (0, 1], got {self.sign_fraction!r}")
        if self.clustering not in CLUSTERINGS:
            raise ValueError(f"clustering must be one of {CLUSTERINGS}, got {self.clustering!r}")
        check_seed(self.seed)

    def generator(self, server_round: int, device: torch.device | str) -> torch.Generator:
        """The round's coordinate-draw generator, seeded by ``(seed, round)``."""
        return stream_generator("signguard-coordinates", self.seed, server_round, device=device)

    def __call__(
        self, rows: torch.Tensor, state: torch.Tensor | None, server_round: int, scale: float = 1.0
    ) -> RuleStep:
        out = signguard(rows, lower=float(self.lower), upper=float(self.upper), fraction=float(self.sign_fraction),
                        clustering=self.clustering, generator=self.generator(server_round, rows.device))
        metrics = {
            "kept_clients": int(out.kept.numel()),
            "norm_kept": int(out.norm_kept.sum()),
            "sign_kept": int(out.sign_kept.sum()),
        }
        return RuleStep(out.aggregate, scale, None, metrics)


@register_rule
@dataclass(frozen=True)
class ClippedClusteringRule(Rule):
    """Clipped clustering (:func:`~fedrobust.aggregators.clustering.clipped_clustering`; Li,
    Ngai and Voigt, 2023, "An Experimental Study of Byzantine-Robust Aggregation Schemes in
    Federated Learning", IEEE Transactions on Big Data, the paper Blades cites for its
    ``Clippedclustering``): the rows are clipped to ``min(max_norm, median of every row norm seen
    so far, this round's included)``, split into two clusters by agglomerative clustering of
    their cosine distances, and the clipped rows of the larger cluster averaged.

    The record of norms is the rule's server state (a float64 tensor, checkpointed with the
    strategy), in the units of ``rows``: gradients in fedrobust's strategies (the step's ``lr``
    is applied after), model deltas in the plugin classes. It grows by ``n`` numbers a round
    (8 bytes each) unless ``history`` bounds it.

    Follows Blades' main version (``max_tau = 1e5``, average linkage, no sign check; one version
    of Blades adds an optional SignGuard-like KMeans on sign statistics, off by default, which is
    not offered here). Differences: Blades keeps label 1 when more than ``n // 2`` rows have it,
    else label 0 (so a tie keeps scikit-learn's label 0); fedrobust keeps the larger cluster and,
    on a tie, the one holding the most central row. A zero row has cosine 0 with all (torch's
    ``cosine_similarity`` convention, which Blades inherits).

    Parameters
    ----------
    max_norm : float
        Upper bound of the clipping threshold ``> 0`` (``rule-params``: ``max_norm``; Blades'
        ``max_tau``), in the units of ``rows``.
    linkage : {"average", "single"}
        ``rule-params``: ``linkage``.
    history : int
        Norms kept in the record (``rule-params``: ``history``): 0 (default, as Blades) keeps
        all; otherwise the latest ``history``.
    """

    name: ClassVar[str] = "clipped-clustering"
    max_norm: float = 1e5
    linkage: str = "average"
    history: int = 0

    def __post_init__(self) -> None:
        check_positive(self.max_norm, "max_norm")
        if self.linkage not in LINKAGES:
            raise ValueError(f"linkage must be one of {LINKAGES}, got {self.linkage!r}")
        check_int(self.history, "history", low=0)

    def __call__(
        self, rows: torch.Tensor, state: torch.Tensor | None, server_round: int, scale: float = 1.0
    ) -> RuleStep:
        norms = row_norms(rows)
        record = norms if state is None else torch.cat([state.to(norms.device, torch.float64).reshape(-1), norms])
        if self.history:
            record = record[-self.history :]
        threshold = min(median(record), float(self.max_norm))
        out = clipped_clustering(rows, threshold, linkage=self.linkage, norms=norms)
        metrics = {"kept_clients": int(out.kept.numel()), "clip_threshold": threshold}
        return RuleStep(out.aggregate, scale, record.clone(), metrics)
