"""Rules registered by this module (see :mod:`fedrobust.aggregators.rules`): robust rules that
select rows or values by their distances to the others, each assuming ``f`` Byzantine rows.

========================= ==================================================================
``bulyan``                Bulyan over Krum (El Mhamdi, Guerraoui and Rouault, 2018); n >= 4f + 3
``meamed``                per coordinate, the mean of the n − f values nearest the median
``mda``                   minimum-diameter averaging: the n − f rows of smallest diameter
``monna``                 the mean of the n − f rows nearest a pivot row (medoid by default)
``caf``                   the covariance-bound agnostic filter (Allouah et al., 2025)
``smea``                  the n − f rows whose covariance has the smallest top eigenvalue
========================= ==================================================================

Every rule takes ``f`` (``rule-params``: ``f=2``; default -1: ``floor(byzantine-fraction ·
clients-per-round)``, see :class:`~fedrobust.aggregators.rules.ByzantineCountRule`). A round with
fewer rows than that ``f`` allows gets a lower ``f``, recorded in the round's metrics as
``<rule>_f``: at most ``(n − 3) // 4`` for Bulyan (it needs ``n >= 4f + 3``; with fewer than 3
rows the rows are averaged), at most ``(n − 1) // 2`` for the others (they need ``2f < n``).
``mda`` and ``smea`` enumerate all ``C(n, f)`` subsets and refuse (``ValueError``) more than
:data:`~fedrobust.aggregators.subsets.MDA_MAX_SUBSETS` /
:data:`~fedrobust.aggregators.subsets.SMEA_MAX_SUBSETS`: on construction when
``clients-per-round`` is known (so the run's config check refuses it), otherwise in the round.

All six are scale-equivariant and unweighted; distances come from the scale-safe Gram matrices of
:mod:`fedrobust.aggregators._gram`, so rows up to 3.4e38 can neither overflow them nor move them.

Examples
--------
>>> rows = torch.tensor([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0], [6.0], [60.0]])
>>> step = BulyanRule(f=1)(rows, None, server_round=1)
>>> step.update, step.metrics
(tensor([2.5000]), {'bulyan_f': 1})
>>> MeamedRule(f=2)(rows, None, server_round=1).update  # median 3.5; the 6 nearest: 1..6
tensor([3.5000])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..core.checks import check_int
from .bulyan import bulyan, meamed
from .filtering import caf_weights
from ._gram import combine
from .neighbours import monna
from .rules import ByzantineCountRule, RuleStep, register_rule
from .subsets import MDA_MAX_SUBSETS, SMEA_MAX_SUBSETS, check_subsets, minimum_diameter_average, smea

__all__ = ["BulyanRule", "MeamedRule", "MDARule", "MoNNARule", "CAFRule", "SMEARule"]


def _half_f(rule: ByzantineCountRule, n: int) -> int:
    """The rule's ``f`` for ``n`` rows, capped so that ``2f < n``."""
    return max(0, min(rule.f_for(n), (n - 1) // 2))


@register_rule
@dataclass(frozen=True)
class BulyanRule(ByzantineCountRule):
    """Bulyan over Krum (:func:`~fedrobust.aggregators.bulyan.bulyan`; El Mhamdi, Guerraoui and
    Rouault, 2018, "The Hidden Vulnerability of Distributed Learning in Byzantium"): ``n − 2f``
    rows picked by repeated Krum, then per coordinate the mean of the ``n − 4f`` picked values
    nearest their median.

    Parameters
    ----------
    f, byzantine_fraction, clients_per_round
        As for :class:`~fedrobust.aggregators.rules.ByzantineCountRule`; ``f`` is capped at
        ``(n − 3) // 4`` for a round of ``n`` rows (metric ``bulyan_f``); fewer than 3 rows are
        averaged.
    """

    name: ClassVar[str] = "bulyan"
    # flwr.serverapp.strategy.Bulyan's num_malicious_nodes (the legacy one's num_malicious_clients).
    flower_names: ClassVar[dict[str, tuple[str, Any]]] = {
        "num_malicious_nodes": ("f", int), "num_malicious_clients": ("f", int),
    }

    def __call__(
        self, rows: torch.Tensor, state: torch.Tensor | None, server_round: int, scale: float = 1.0
    ) -> RuleStep:
        n = rows.shape[0]
        if n < 3:  # Bulyan with f = 0 is the mean
            return RuleStep(rows.mean(dim=0), scale, None, {"bulyan_f": 0})
        f = max(0, min(self.f_for(n), (n - 3) // 4))
        return RuleStep(bulyan(rows, f), scale, None, {"bulyan_f": f})


@register_rule
@dataclass(frozen=True)
class MeamedRule(ByzantineCountRule):
    """Meamed (:func:`~fedrobust.aggregators.bulyan.meamed`; Xie, Koyejo and Gupta, 2018,
    "Generalized Byzantine-tolerant SGD"): per coordinate, the mean of the ``n − f`` values nearest
    the coordinate-wise median.

    Parameters
    ----------
    f, byzantine_fraction, clients_per_round
        As for :class:`~fedrobust.aggregators.rules.ByzantineCountRule`; ``f`` is capped at
        ``(n − 1) // 2`` (metric ``meamed_f``).
    """

    name: ClassVar[str] = "meamed"

    def __call__(
        self, rows: torch.Tensor, state: torch.Tensor | None, server_round: int, scale: float = 1.0
    ) -> RuleStep:
        f = _half_f(self, rows.shape[0])
        return RuleStep(meamed(rows, f), scale, None, {"meamed_f": f})


class _SubsetRule(ByzantineCountRule):
    """A rule that enumerates the ``C(n, f)`` subsets: refuses too many on construction when it can."""

    limit: ClassVar[int] = 0
    label: ClassVar[str] = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        c = self.clients_per_round
        if c > 0:
            check_subsets(c, _half_f(self, c), self.limit, self.label)


@register_rule
@dataclass(frozen=True)
class MDARule(_SubsetRule):
    """Minimum-diameter averaging (:func:`~fedrobust.aggregators.subsets.minimum_diameter_average`;
    El Mhamdi, Guerraoui, Guirguis, Hoang and Rouault, 2020, "Genuinely Distributed Byzantine
    Machine Learning"): the mean of the ``n − f`` rows of smallest diameter.

    Parameters
    ----------
    f, byzantine_fraction, clients_per_round
        As for :class:`~fedrobust.aggregators.rules.ByzantineCountRule`; ``f`` is capped at
        ``(n − 1) // 2`` (metric ``mda_f``). ``C(n, f)`` may not exceed
        :data:`~fedrobust.aggregators.subsets.MDA_MAX_SUBSETS` (``ValueError``).
    """

    name: ClassVar[str] = "mda"
    limit: ClassVar[int] = MDA_MAX_SUBSETS
    label: ClassVar[str] = "MDA"

    def __call__(
        self, rows: torch.Tensor, state: torch.Tensor | None, server_round: int, scale: float = 1.0
    ) -> RuleStep:
        f = _half_f(self, rows.shape[0])
        return RuleStep(minimum_diameter_average(rows, f), scale, None, {"mda_f": f})


@register_rule
@dataclass(frozen=True)
class MoNNARule(ByzantineCountRule):
    """MoNNA (:func:`~fedrobust.aggregators.neighbours.monna`; Farhadkhani, Guerraoui, Gupta, Hoang,
    Pinot and Stephan, 2023, "Robust Collaborative Learning with Linear Gradient Overhead"): the
    mean of the ``n − f`` rows nearest a pivot row.

    Parameters
    ----------
    f, byzantine_fraction, clients_per_round
        As for :class:`~fedrobust.aggregators.rules.ByzantineCountRule`; ``f`` is capped at
        ``(n − 1) // 2`` (metric ``monna_f``).
    pivot : int
        The pivot (``rule-params``: ``pivot=0``): -1 (default) the medoid of the round's rows, the
        row with the smallest sum of distances to the others; ``i >= 0`` the round's row ``i``
        (ByzFL's ``idx``), meaningful only when the caller puts a trusted row there (the order of
        the replies is otherwise arbitrary); a round with ``i >= n`` rows is refused.
    """

    name: ClassVar[str] = "monna"
    pivot: int = -1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int(self.pivot, "pivot", low=-1)

    def __call__(
        self, rows: torch.Tensor, state: torch.Tensor | None, server_round: int, scale: float = 1.0
    ) -> RuleStep:
        f = _half_f(self, rows.shape[0])
        return RuleStep(monna(rows, f, self.pivot), scale, None, {"monna_f": f})


@register_rule
@dataclass(frozen=True)
class CAFRule(ByzantineCountRule):
    """The covariance-bound agnostic filter (:func:`~fedrobust.aggregators.filtering.caf`;
    Allouah, Guerraoui and Stephan, 2025, "Towards Trustworthy Federated Learning with Untrusted
    Participants").

    Parameters
    ----------
    f, byzantine_fraction, clients_per_round
        As for :class:`~fedrobust.aggregators.rules.ByzantineCountRule`; ``f`` is capped at
        ``(n − 1) // 2`` (metric ``caf_f``; ``caf_iterations``: the filtering steps).
    """

    name: ClassVar[str] = "caf"

    def __call__(
        self, rows: torch.Tensor, state: torch.Tensor | None, server_round: int, scale: float = 1.0
    ) -> RuleStep:
        f = _half_f(self, rows.shape[0])
        out = caf_weights(rows, f)
        return RuleStep(combine(rows, out.weights), scale, None, {"caf_f": f, "caf_iterations": out.iterations})


@register_rule
@dataclass(frozen=True)
class SMEARule(_SubsetRule):
    """Smallest maximum eigenvalue averaging (:func:`~fedrobust.aggregators.subsets.smea`;
    Allouah, Guerraoui, Gupta, Pinot and Stephan, 2023, "On the Privacy-Robustness-Utility
    Trilemma in Distributed Learning"): the mean of the ``n − f`` rows whose covariance has the
    smallest top eigenvalue.

    Parameters
    ----------
    f, byzantine_fraction, clients_per_round
        As for :class:`~fedrobust.aggregators.rules.ByzantineCountRule`; ``f`` is capped at
        ``(n − 1) // 2`` (metric ``smea_f``). ``C(n, f)`` may not exceed
        :data:`~fedrobust.aggregators.subsets.SMEA_MAX_SUBSETS` (``ValueError``).
    """

    name: ClassVar[str] = "smea"
    limit: ClassVar[int] = SMEA_MAX_SUBSETS
    label: ClassVar[str] = "SMEA"

    def __call__(
        self, rows: torch.Tensor, state: torch.Tensor | None, server_round: int, scale: float = 1.0
    ) -> RuleStep:
        f = _half_f(self, rows.shape[0])
        return RuleStep(smea(rows, f), scale, None, {"smea_f": f})
