"""The robust rules of the plugin strategies: what replaces FedAvg's weighted mean.

A rule maps the (n, d) matrix of client deltas (each accepted client's new model minus the global
model, flattened) to the update ``u`` that the global model moves by, ``x ← x + u``, with a pure
function of :mod:`fedrobust.aggregators`. Rules are frozen dataclasses of their parameters (checked
on construction); a rule with server state (BGMD's residual memory) receives the state and returns
the new one, which the caller keeps only when the step is finite.

========================= ==================================================================
``gmd``                   geometric median of the deltas
``bgmd``                  block geometric median with residual memory (001, Algorithm 1)
``cmd``                   coordinate-wise median
``trimmed-mean``          coordinate-wise mean after dropping ``beta`` of the values on each side
``krum``                  Krum / multi-Krum
``norm-threshold``        mean of the deltas left after dropping the ``beta`` largest norms
========================= ==================================================================

Every rule is unweighted: a client's claimed number of examples would let one attacker outweigh
everyone else.

Examples
--------
>>> deltas = torch.tensor([[1.0, 0.0], [2.0, 1.0], [3.0, -1.0], [2.0, 0.0], [-100.0, 100.0]])
>>> CMDRule()(deltas, None, server_round=1).update
tensor([2., 0.])
>>> sorted(RULES)
['bgmd', 'cmd', 'gmd', 'krum', 'norm-threshold', 'trimmed-mean']
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar, NamedTuple

import torch

from .._checks import check_fraction, check_int, check_positive, check_seed
from .._rng import stream_generator
from ..aggregators import (
    MEMORY_WEIGHTS,
    SELECTIONS,
    block_geometric_median,
    coordinate_median,
    geometric_median,
    krum,
    norm_trim,
    trimmed_mean,
)
from ..strategies.bgmd import block_size
from ..strategies.krum import krum_f

__all__ = [
    "RULES",
    "Rule",
    "RuleStep",
    "GMDRule",
    "BGMDRule",
    "CMDRule",
    "TrimmedMeanRule",
    "KrumRule",
    "NormThresholdRule",
    "rule_parameters",
]


class RuleStep(NamedTuple):
    """What a rule returns for one round."""

    update: torch.Tensor
    """``u``, shape (d,): the global model moves to ``x + u``."""
    state: torch.Tensor | None
    """The rule's new server state (BGMD's mean memory), or None."""
    metrics: dict[str, int | float]
    """Per-round metrics of the rule (e.g. ``gm_iterations``)."""


@dataclass(frozen=True)
class Rule:
    """Base class: ``rule(deltas, state, server_round) -> RuleStep``."""

    name: ClassVar[str] = ""

    def __call__(self, deltas: torch.Tensor, state: torch.Tensor | None, server_round: int) -> RuleStep:
        """The update for the (n, d) ``deltas`` (may be overwritten), given the rule's ``state``."""
        raise NotImplementedError

    def parameters(self) -> dict[str, Any]:
        """The rule's parameters by keyword name (for logs and ``repr``)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def rule_parameters(rule_class: type[Rule]) -> tuple[str, ...]:
    """The keyword names a rule class takes.

    Examples
    --------
    >>> rule_parameters(TrimmedMeanRule)
    ('beta',)
    """
    return tuple(f.name for f in fields(rule_class))


@dataclass(frozen=True)
class GMDRule(Rule):
    """``u = GM(deltas)``, the geometric median (Weiszfeld, :func:`~fedrobust.aggregators.geometric_median`).

    Parameters
    ----------
    gm_tol : float
        Relative tolerance of the Weiszfeld iteration (run key ``gm-tol``).
    gm_max_iter : int
        Iteration cap (``gm-max-iter``).
    """

    name: ClassVar[str] = "gmd"
    gm_tol: float = 1e-7
    gm_max_iter: int = 200

    def __post_init__(self) -> None:
        check_positive(self.gm_tol, "gm_tol")
        check_int(self.gm_max_iter, "gm_max_iter", low=1)

    def __call__(self, deltas: torch.Tensor, state: torch.Tensor | None, server_round: int) -> RuleStep:
        gm = geometric_median(deltas, tol=self.gm_tol, max_iter=self.gm_max_iter)
        return RuleStep(gm.median, None, {"gm_iterations": int(gm.iterations)})


@dataclass(frozen=True)
class BGMDRule(Rule):
    """Block geometric median with residual memory (:func:`~fedrobust.aggregators.block_geometric_median`).

    Each round ``P = deltas + m`` (``m``: the memory, zero at first); ``k = max(1, round(rho · d))``
    columns of ``P`` are selected, ``u`` is the GM of the rows there (zero elsewhere) and the
    residual ``P − C_k(P)`` becomes the memory, averaged over the rows with the GM's Weiszfeld
    weights (``memory_weights="gm"``) or uniformly. Unlike fedrobust's own ``bgmd`` (gradients,
    step ``lr``), the rows here are model deltas, so there is no step size.

    Parameters
    ----------
    rho : float
        Block fraction in (0, 1] (``rho``).
    memory : {"mean", "none"}
        Keep the mean residual memory, or none (001 Fig. 6's ablation). fedrobust's per-client
        ``rows`` memory needs stable client ids and is not offered here.
    memory_weights : {"gm", "uniform"}
        How the mean memory averages the residual rows (``memory-weights``).
    selection : {"sample", "top-k"}
        Block selection: sampled by column norm (001's Algorithm 2) or the k largest (``selection``).
    gm_tol, gm_max_iter
        As for :class:`GMDRule`.
    seed : int
        Seeds the block draw, with the round: ``(seed, round)``.
    """

    name: ClassVar[str] = "bgmd"
    rho: float = 0.1
    memory: str = "mean"
    memory_weights: str = "gm"
    selection: str = "sample"
    gm_tol: float = 1e-7
    gm_max_iter: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < check_positive(self.rho, "rho") <= 1.0:
            raise ValueError(f"rho must lie in (0, 1], got {self.rho!r}")
        if self.memory not in ("mean", "none"):
            raise ValueError(f"memory must be 'mean' or 'none', got {self.memory!r}")
        if self.memory_weights not in MEMORY_WEIGHTS:
            raise ValueError(f"memory_weights must be one of {MEMORY_WEIGHTS}, got {self.memory_weights!r}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {self.selection!r}")
        GMDRule(self.gm_tol, self.gm_max_iter)
        check_seed(self.seed)

    def __call__(self, deltas: torch.Tensor, state: torch.Tensor | None, server_round: int) -> RuleStep:
        if self.memory == "mean" and state is not None:
            deltas.add_(state.to(deltas.device, deltas.dtype))
        k = block_size(self.rho, deltas.shape[1])
        generator = stream_generator("block-selection", self.seed, server_round, device=deltas.device)
        out = block_geometric_median(
            deltas, k, generator=generator, selection=self.selection, memory=self.memory,
            memory_weights=self.memory_weights, tol=self.gm_tol, max_iter=self.gm_max_iter,
        )
        metrics = {
            "relative_residual": float(out.relative_residual),
            "gm_iterations": int(out.iterations),
            "block_size": k,
        }
        return RuleStep(out.update, out.memory, metrics)


@dataclass(frozen=True)
class CMDRule(Rule):
    """``u = coordinate_median(deltas)`` (numpy's convention for an even number of rows)."""

    name: ClassVar[str] = "cmd"

    def __call__(self, deltas: torch.Tensor, state: torch.Tensor | None, server_round: int) -> RuleStep:
        return RuleStep(coordinate_median(deltas), None, {})


@dataclass(frozen=True)
class TrimmedMeanRule(Rule):
    """``u = trimmed_mean(deltas, beta)``: per coordinate, ``floor(beta · n)`` values dropped on each side.

    Parameters
    ----------
    beta : float
        Fraction trimmed from each side, in [0, 0.5) (``beta``).
    """

    name: ClassVar[str] = "trimmed-mean"
    beta: float = 0.2

    def __post_init__(self) -> None:
        check_fraction(self.beta, "beta")

    def __call__(self, deltas: torch.Tensor, state: torch.Tensor | None, server_round: int) -> RuleStep:
        return RuleStep(trimmed_mean(deltas, self.beta), None, {})


@dataclass(frozen=True)
class KrumRule(Rule):
    """``u = krum(deltas, f, m)``: the delta (``m = 1``) or the mean of the ``m`` deltas with the best Krum scores.

    Parameters
    ----------
    krum_f : int
        Assumed Byzantine clients per round (``krum-f``); -1: ``floor(byzantine_fraction · n)`` of
        the n accepted replies. Capped at ``(n − 3) // 2`` (Krum needs ``2f + 2 < n``); with fewer
        than 3 replies the deltas are averaged.
    krum_m : int
        Deltas averaged (``krum-m``; 1: Krum, > 1: multi-Krum), at most ``n − f``.
    byzantine_fraction : float
        Used when ``krum_f = -1``, in [0, 1) (``byzantine-fraction``).
    """

    name: ClassVar[str] = "krum"
    krum_f: int = -1
    krum_m: int = 1
    byzantine_fraction: float = 0.2

    def __post_init__(self) -> None:
        check_int(self.krum_f, "krum_f", low=-1)
        check_int(self.krum_m, "krum_m", low=1)
        check_fraction(self.byzantine_fraction, "byzantine_fraction", upper=1.0)

    def __call__(self, deltas: torch.Tensor, state: torch.Tensor | None, server_round: int) -> RuleStep:
        n = deltas.shape[0]
        if n < 3:
            return RuleStep(deltas.mean(dim=0), None, {"krum_f": 0})
        f = krum_f(self.krum_f, self.byzantine_fraction, n, n)
        return RuleStep(krum(deltas, f, min(self.krum_m, n - f)), None, {"krum_f": f})


@dataclass(frozen=True)
class NormThresholdRule(Rule):
    """``u`` = mean of the deltas left after dropping the ``floor(beta · n)`` with the largest norms
    (:func:`~fedrobust.aggregators.norm_trim`; 002's thresholding, without compression).

    Parameters
    ----------
    beta : float
        Fraction of the replies dropped, in [0, 1) (``beta``); it must exceed the Byzantine fraction.
    """

    name: ClassVar[str] = "norm-threshold"
    beta: float = 0.2

    def __post_init__(self) -> None:
        check_fraction(self.beta, "beta", upper=1.0)

    def __call__(self, deltas: torch.Tensor, state: torch.Tensor | None, server_round: int) -> RuleStep:
        kept = norm_trim(deltas, self.beta)
        return RuleStep(deltas.index_select(0, kept).mean(dim=0), None, {"kept_clients": int(kept.numel())})


RULES: dict[str, type[Rule]] = {
    cls.name: cls for cls in (GMDRule, BGMDRule, CMDRule, TrimmedMeanRule, KrumRule, NormThresholdRule)
}
"""Rule classes by strategy name (the names of :data:`fedrobust.strategies.STRATEGIES`)."""
