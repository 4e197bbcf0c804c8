"""Aggregation rules: one object per robust rule, used by every layer of fedrobust.

A rule maps the (n, d) matrix of client vectors of one round to the aggregate the global model
moves along, with a pure function of :mod:`fedrobust.aggregators`. Rules are frozen dataclasses of
their parameters (checked on construction), free of Flower; the same rule object serves

- fedrobust's own strategies (:mod:`fedrobust.strategies`; legacy and Message API), whose rows are
  gradients: ``x ← x − lr · aggregate`` (the rule is called with ``scale = lr``);
- the plugin strategies (:mod:`fedrobust.plugin`), drop-in replacements of Flower's ``FedAvg``
  whose rows are model deltas: ``x ← x + aggregate``.

A call ``rule(rows, state, server_round, scale)`` returns a :class:`RuleStep`; the aggregate of
``scale · rows`` is ``step.scale · step.update`` (a scale-equivariant rule runs on ``rows`` and
returns ``step.scale = scale``, so the rows are never multiplied). A rule with server state
(BGMD's residual memory) receives its state and returns the new one, which the caller keeps only
when the step is finite.

========================= ==================================================================
``gmd``                   geometric median
``bgmd``                  block geometric median with residual memory (Acharya et al., 2022)
``cmd``                   coordinate-wise median
``trimmed-mean``          coordinate-wise mean after dropping ``beta`` of the values on each side
``krum``                  Krum / multi-Krum
``norm-threshold``        mean of the rows left after dropping the ``beta`` largest norms
``centered-clipping``     iterative clipping around the previous aggregate (Karimireddy et al., 2021)
``fltrust``               FLTrust: trust scores from the server's own update (:mod:`.rules_fltrust`)
selection rules           ``bulyan``, ``meamed``, ``mda``, ``monna``, ``caf``, ``smea`` (:mod:`.rules_selection`)
clustering rules          ``dnc``, ``signguard``, ``clipped-clustering`` (:mod:`.rules_clustering`)
========================= ==================================================================

:func:`register_rule` adds a rule class to :data:`RULES`; a registered rule becomes a plugin
class for both Flower APIs (``Fed`` + the class name without ``Rule``) with no further code.

Every rule is unweighted: a client's claimed number of examples would let one attacker outweigh
everyone else.

Examples
--------
>>> rows = torch.tensor([[1.0, 0.0], [2.0, 1.0], [3.0, -1.0], [2.0, 0.0], [-100.0, 100.0]])
>>> CMDRule()(rows, None, server_round=1).update
tensor([2., 0.])
>>> sorted(RULES)  # doctest: +NORMALIZE_WHITESPACE
['bgmd', 'bulyan', 'caf', 'centered-clipping', 'clipped-clustering', 'cmd', 'dnc', 'fltrust', 'gmd', 'krum',
 'mda', 'meamed', 'monna', 'norm-threshold', 'signguard', 'smea', 'trimmed-mean']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch

from ..core.checks import check_fraction, check_int, check_positive, check_seed, count_of
from ..core.params import parse_params
from ..core.rng import stream_generator
from .bgmd import MEMORIES, MEMORY_WEIGHTS, block_geometric_median
from .block import SELECTIONS
from .centered_clipping import centered_clipping
from .coordinate import coordinate_median, trimmed_mean
from .geometric_median import geometric_median
from .krum import krum
from .norm_trim import norm_threshold_mean

__all__ = [
    "RULES",
    "Rule",
    "RuleStep",
    "ByzantineCountRule",
    "GMDRule",
    "BGMDRule",
    "CMDRule",
    "TrimmedMeanRule",
    "KrumRule",
    "NormThresholdRule",
    "CenteredClippingRule",
    "assumed_f",
    "block_size",
    "krum_f",
    "register_rule",
    "rule_parameters",
]


class RuleStep(NamedTuple):
    """What a rule returns for one round: the aggregate is ``scale * update``."""

    update: torch.Tensor
    """Shape (d,), in the rows' dtype and device."""
    scale: float
    """The factor ``update`` still has to be multiplied by (the caller folds it into its step)."""
    state: torch.Tensor | None
    """The rule's new server state (BGMD's mean memory), or None."""
    metrics: dict[str, int | float]
    """Per-round metrics of the rule (e.g. ``gm_iterations``)."""


@dataclass(frozen=True)
class Rule:
    """Base class: ``rule(rows, state, server_round, scale) -> RuleStep`` (see the module docstring).

    Subclasses are frozen dataclasses whose fields are the rule's parameters, named as the run
    keys they come from (``gm_tol`` is ``gm-tol``), so that :meth:`from_config` needs no table.
    """

    name: ClassVar[str] = ""
    #: Flower's argument names for the same parameter, where Flower has the same rule: Flower's
    #: name -> (the rule's field, how Flower's value maps to it). The plugin classes take either.
    flower_names: ClassVar[dict[str, tuple[str, Any]]] = {}

    def __call__(
        self, rows: torch.Tensor, state: torch.Tensor | None, server_round: int, scale: float = 1.0
    ) -> RuleStep:
        """The aggregate of ``scale * rows`` (``rows`` may be overwritten), given the rule's ``state``."""
        raise NotImplementedError

    def check_plugin(self) -> None:
        """Raise ``ValueError`` for parameters the plugin strategies cannot honour (default: none)."""

    def plugin_inputs(self, global_arrays: Sequence[np.ndarray], server_round: int) -> dict[str, Any]:
        """Keyword arguments a plugin strategy adds to the round's call, given the global model the
        round sent (default: none; FLTrust's server update ``reference``)."""
        return {}

    def parameters(self) -> dict[str, Any]:
        """The rule's parameters by keyword name (for logs and ``repr``)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_config(cls, cfg: Any, **overrides: Any) -> "Rule":
        """The rule with the run's values of its parameters, ``overrides`` taking precedence.

        A parameter named like a run key (``beta``, ``gm-tol``, ``byzantine-fraction``) takes that
        key's value; the others come from the run key ``rule-params`` (``"tau=10,iterations=1"``),
        which may name only those.

        Raises
        ------
        ValueError
            If ``rule-params`` names a parameter the rule does not take, or one that is a run key.

        Examples
        --------
        >>> from types import SimpleNamespace
        >>> TrimmedMeanRule.from_config(SimpleNamespace(beta=0.3, lr=0.1))
        TrimmedMeanRule(beta=0.3)
        >>> TrimmedMeanRule.from_config(SimpleNamespace(beta=0.3, rule_params="beta=0.1"))
        Traceback (most recent call last):
        ...
        ValueError: rule-params: beta is the run key beta; set it there
        """
        names = [f.name for f in fields(cls) if f.init]
        params = {name: getattr(cfg, name) for name in names if hasattr(cfg, name)}
        for name, value in parse_params(str(getattr(cfg, "rule_params", "") or ""), "rule-params").items():
            if hasattr(cfg, name):
                raise ValueError(f"rule-params: {name.replace('_', '-')} is the run key {name.replace('_', '-')}; set it there")
            if name not in names:
                own = [n.replace("_", "-") for n in names if not hasattr(cfg, n)]
                raise ValueError(
                    f"rule-params: {cls.name} takes no parameter {name.replace('_', '-')!r}"
                    + (f" (it takes {', '.join(own)})" if own else " (it has none outside the run keys)")
                )
            params[name] = value
        return cls(**{**params, **overrides})


@dataclass(frozen=True)
class ByzantineCountRule(Rule):
    """Base class of the rules that assume a number ``f`` of Byzantine rows (Bulyan, MDA, ...).

    Parameters
    ----------
    f : int
        Assumed Byzantine rows per round (``rule-params``: ``f=2``); -1: the expected number
        ``floor(byzantine_fraction · c)`` with c = ``clients_per_round`` (:func:`assumed_f`).
    byzantine_fraction : float
        Used when ``f = -1``, in [0, 1) (``byzantine-fraction``).
    clients_per_round : int
        The clients sampled per round (``clients-per-round``); 0: the round's number of rows.
    """

    f: int = -1
    byzantine_fraction: float = 0.2
    clients_per_round: int = 0

    def __post_init__(self) -> None:
        check_int(self.f, "f", low=-1)
        check_fraction(self.byzantine_fraction, "byzantine_fraction", upper=1.0)
        check_int(self.clients_per_round, "clients_per_round", low=0)

    def f_for(self, n: int) -> int:
        """The ``f`` of a round with ``n`` rows (:func:`assumed_f`; each rule checks it against ``n``)."""
        return assumed_f(self.f, self.byzantine_fraction, self.clients_per_round, n)


RULES: dict[str, type[Rule]] = {}
"""Rule classes by strategy name (the names of :data:`fedrobust.strategies.STRATEGIES`)."""


def register_rule(cls: type[Rule]) -> type[Rule]:
    """Class decorator: add a :class:`Rule` subclass to :data:`RULES` under its ``name``.

    Raises
    ------
    ValueError
        If the class has no name or another rule class has it.
    """
    if not (isinstance(cls, type) and issubclass(cls, Rule)):
        raise TypeError(f"register_rule takes a Rule subclass, got {cls!r}")
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a name")
    if RULES.get(cls.name, cls) is not cls:
        raise ValueError(f"a rule named {cls.name!r} is already registered ({RULES[cls.name].__name__})")
    RULES[cls.name] = cls
    return cls


def block_size(rho: float, d: int) -> int:
    """``k = max(1, round(rho · d))`` coordinates per round.

    Examples
    --------
    >>> block_size(0.1, 1000), block_size(0.001, 10), block_size(1.0, 7)
    (100, 1, 7)
    """
    return max(1, min(d, round(rho * d)))


def krum_f(requested: int, byzantine_fraction: float, clients_per_round: int, n: int) -> int:
    """The ``f`` Krum uses for ``n`` rows: ``requested``, or with -1 the expected number of
    Byzantine clients ``floor(byzantine_fraction · clients_per_round)``, capped so that ``2f + 2 < n``.

    Examples
    --------
    >>> krum_f(-1, 0.2, 10, 10), krum_f(-1, 0.4, 10, 10), krum_f(1, 0.4, 10, 10), krum_f(-1, 0.29, 100, 100)
    (2, 3, 1, 29)
    """
    f = count_of(byzantine_fraction, clients_per_round) if requested < 0 else requested
    return max(0, min(f, (n - 3) // 2))


def assumed_f(requested: int, byzantine_fraction: float, clients_per_round: int, n: int) -> int:
    """``requested``, or with -1 the Byzantine rows expected in a round of ``n`` rows,
    ``floor(byzantine_fraction · c)`` with c = ``clients_per_round`` (0: ``n``); never above ``n``.

    Examples
    --------
    >>> assumed_f(-1, 0.2, 10, 10), assumed_f(-1, 0.2, 0, 25), assumed_f(3, 0.2, 10, 10), assumed_f(-1, 0.4, 10, 7)
    (2, 5, 3, 4)
    """
    f = count_of(byzantine_fraction, clients_per_round or n) if requested < 0 else requested
    return min(f, n)


def rule_parameters(rule_class: type[Rule]) -> tuple[str, ...]:
    """The keyword names a rule class takes.

    Examples
    --------
    >>> rule_parameters(TrimmedMeanRule)
    ('beta',)
    """
    return tuple(f.name for f in fields(rule_class))


@register_rule
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

    def __call__(
        self, rows: torch.Tensor, state: torch.Tensor | None, server_round: int, scale: float = 1.0
    ) -> RuleStep:
        # The GM is scale-equivariant and its tolerance scale-free: GM(scale · rows) = scale · GM(rows).
        gm = geometric_median(rows, tol=self.gm_tol, max_iter=self.gm_max_iter)
        return RuleStep(gm.median, scale, None, {"gm_iterations": int(gm.iterations)})


@register_rule
@dataclass(frozen=True)
class BGMDRule(Rule):
    """Block geometric median with residual memory (:func:`~fedrobust.aggregators.block_geometric_median`;
    Acharya, Hashemi, Jain, Sanghavi, Dhillon and Topcu, 2022, "Robust Training in High Dimensions
    via Block Coordinate Geometric Median Descent").

    Each round ``P = scale · rows + m`` (``m``: the mean memory, absent at first);
    ``k = max(1, round(rho · d))`` columns of ``P`` are selected, the aggregate is the GM of the rows
    there (zero elsewhere) and the residual ``P − C_k(P)`` becomes the memory: averaged over the
    rows with the GM's Weiszfeld weights (``memory_weights="gm"``) or uniformly (``"mean"``),
    returned whole (``"rows"``: the caller keeps one residual row per client and adds it to
    ``rows`` itself, as FL-BGMD does), or dropped (``"none"``). While there is no memory to add,
    ``P`` is never formed: selection and GM are scale-equivariant, so the step runs on ``rows``.

    Parameters
    ----------
    rho : float
        Block fraction in (0, 1] (``rho``).
    memory : {"mean", "rows", "none"}
        The residual memory (the plugin strategies offer ``mean`` and ``none``: ``rows`` needs
        stable client ids).
    memory_weights : {"gm", "uniform"}
        How the mean memory averages the residual rows (``memory-weights``).
    selection : {"sample", "top-k"}
        Block selection: sampled by column norm or the k largest (``selection``).
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
        if self.memory not in MEMORIES:
            raise ValueError(f"memory must be one of {MEMORIES}, got {self.memory!r}")
        if self.memory_weights not in MEMORY_WEIGHTS:
            raise ValueError(f"memory_weights must be one of {MEMORY_WEIGHTS}, got {self.memory_weights!r}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {self.selection!r}")
        GMDRule(self.gm_tol, self.gm_max_iter)
        check_seed(self.seed)

    def check_plugin(self) -> None:
        """``rows`` memory needs stable client ids, which a plugin strategy does not have."""
        if self.memory not in ("mean", "none"):
            raise ValueError(f"memory must be 'mean' or 'none' for a plugin strategy, got {self.memory!r}")

    def generator(self, server_round: int, device: torch.device | str) -> torch.Generator:
        """The round's block-draw generator, seeded by ``(seed, round)``: a restarted run draws alike."""
        return stream_generator("block-selection", self.seed, server_round, device=device)

    def __call__(
        self, rows: torch.Tensor, state: torch.Tensor | None, server_round: int, scale: float = 1.0
    ) -> RuleStep:
        if self.memory == "mean" and state is not None:
            torch.add(state.to(rows.device, rows.dtype), rows, alpha=scale, out=rows)  # P = m + scale · rows
            scale = 1.0
        k = block_size(self.rho, rows.shape[1])
        out = block_geometric_median(
            rows, k, generator=self.generator(server_round, rows.device), selection=self.selection,
            memory=self.memory, memory_weights=self.memory_weights, tol=self.gm_tol, max_iter=self.gm_max_iter,
        )
        memory = out.memory
        if self.memory == "mean" and scale != 1.0:
            memory = memory.mul_(scale)
        metrics = {
            "relative_residual": float(out.relative_residual),
            "gm_iterations": int(out.iterations),
            "block_size": k,
        }
        return RuleStep(out.update, scale, memory, metrics)


@register_rule
@dataclass(frozen=True)
class CMDRule(Rule):
    """The coordinate-wise median (numpy's convention for an even number of rows; Yin, Chen,
    Ramchandran and Bartlett, 2018, "Byzantine-Robust Distributed Learning: Towards Optimal
    Statistical Rates")."""

    name: ClassVar[str] = "cmd"

    def __call__(
        self, rows: torch.Tensor, state: torch.Tensor | None, server_round: int, scale: float = 1.0
    ) -> RuleStep:
        return RuleStep(coordinate_median(rows), scale, None, {})


@register_rule
@dataclass(frozen=True)
class TrimmedMeanRule(Rule):
    """The coordinate-wise trimmed mean: per coordinate, ``floor(beta · n)`` values dropped on each
    side (Yin et al., 2018); ByzFL's ``TrMean(f)`` is ``beta = f / n``.

    Parameters
    ----------
    beta : float
        Fraction trimmed from each side, in [0, 0.5) (``beta``).
    """

    name: ClassVar[str] = "trimmed-mean"
    beta: float = 0.2

    def __post_init__(self) -> None:
        if not (isinstance(self.beta, (int, float)) and 0.0 <= self.beta < 0.5):
            raise ValueError(f"beta must lie in [0, 0.5) for trimmed-mean (trimmed from each side), got {self.beta!r}")

    def __call__(
        self, rows: torch.Tensor, state: torch.Tensor | None, server_round: int, scale: float = 1.0
    ) -> RuleStep:
        return RuleStep(trimmed_mean(rows, self.beta), scale, None, {})


@register_rule
@dataclass(frozen=True)
class KrumRule(Rule):
    """Krum / multi-Krum (Blanchard, El Mhamdi, Guerraoui and Stainer, 2017, "Machine Learning with
    Adversaries: Byzantine Tolerant Gradient Descent"): the row (``m = 1``) or the mean of the
    ``m`` rows with the best Krum scores. A row's score sums its squared distances to its ``n − f − 2``
    nearest others, as in the paper; ByzFL's ``Krum(f)`` takes ``n − f − 1``, so its ``f`` is
    fedrobust's ``f + 1`` (and its ``MultiKrum(f)`` is ``krum_m = n − f`` with fedrobust's ``f − 1``;
    tests/test_rules_byzfl.py).

    Parameters
    ----------
    krum_f : int
        Assumed Byzantine clients per round (``krum-f``); -1: ``floor(byzantine_fraction · c)``
        with c = ``clients_per_round``. Capped at ``(n − 3) // 2`` for n rows (Krum needs
        ``2f + 2 < n``); with fewer than 3 rows they are averaged.
    krum_m : int
        Rows averaged (``krum-m``; 1: Krum, > 1: multi-Krum), at most ``n − f``.
    byzantine_fraction : float
        Used when ``krum_f = -1``, in [0, 1) (``byzantine-fraction``).
    clients_per_round : int
        The clients sampled per round, of which ``byzantine_fraction`` are expected Byzantine
        (``clients-per-round``); 0: the number of rows of the round.
    """

    name: ClassVar[str] = "krum"
    # flwr.server.strategy.Krum (legacy; num_clients_to_keep = 0: plain Krum) and
    # flwr.serverapp.strategy.Krum / MultiKrum (Message API); Flower's Krum scores use the
    # n − f − 2 nearest rows too, so its num_malicious_* is krum_f as it is.
    flower_names: ClassVar[dict[str, tuple[str, Any]]] = {
        "num_malicious_clients": ("krum_f", int),
        "num_malicious_nodes": ("krum_f", int),
        "num_clients_to_keep": ("krum_m", lambda v: max(1, int(v))),
        "num_nodes_to_select": ("krum_m", int),
    }
    krum_f: int = -1
    krum_m: int = 1
    byzantine_fraction: float = 0.2
    clients_per_round: int = 0

    def __post_init__(self) -> None:
        check_int(self.krum_f, "krum_f", low=-1)
        check_int(self.krum_m, "krum_m", low=1)
        check_fraction(self.byzantine_fraction, "byzantine_fraction", upper=1.0)
        check_int(self.clients_per_round, "clients_per_round", low=0)

    def __call__(
        self, rows: torch.Tensor, state: torch.Tensor | None, server_round: int, scale: float = 1.0
    ) -> RuleStep:
        n = rows.shape[0]
        if n < 3:  # Krum is undefined; the (one or two) rows are averaged
            return RuleStep(rows.mean(dim=0), scale, None, {"krum_f": 0})
        f = krum_f(self.krum_f, self.byzantine_fraction, self.clients_per_round or n, n)
        return RuleStep(krum(rows, f, min(self.krum_m, n - f)), scale, None, {"krum_f": f})


@register_rule
@dataclass(frozen=True)
class NormThresholdRule(Rule):
    """The mean of the rows left after dropping the ``floor(beta · n)`` with the largest norms
    (:func:`~fedrobust.aggregators.norm_trim`; the thresholding of Ghosh, Maity, Kadhe, Mazumdar and
    Ramchandran, 2021, "Communication-Efficient and Byzantine-Robust Distributed Learning with
    Error Feedback", without compression).

    Parameters
    ----------
    beta : float
        Fraction of the replies dropped, in [0, 1) (``beta``); it must exceed the Byzantine fraction.
    """

    name: ClassVar[str] = "norm-threshold"
    beta: float = 0.2

    def __post_init__(self) -> None:
        check_fraction(self.beta, "beta", upper=1.0)

    def __call__(
        self, rows: torch.Tensor, state: torch.Tensor | None, server_round: int, scale: float = 1.0
    ) -> RuleStep:
        mean, kept = norm_threshold_mean(rows, self.beta, overwrite=True)  # rows are the round's scratch
        return RuleStep(mean, scale, None, {"kept_clients": int(kept.numel())})


@register_rule
@dataclass(frozen=True)
class CenteredClippingRule(Rule):
    """Centered clipping (:func:`~fedrobust.aggregators.centered_clipping.centered_clipping`;
    Karimireddy, He and Jaggi, 2021, "Learning from History for Byzantine Robust Optimization"):
    ``iterations`` steps of ``v ← v + mean_i (x_i − v) · min(1, τ / ‖x_i − v‖)`` from the previous
    round's aggregate (the rule's state; zero in round 1, checkpointed with the strategy).

    ``τ`` is measured in the units of the rows: gradients (or worker momenta, ``client-momentum``,
    with which the paper pairs the rule) in fedrobust's strategies, model deltas in the plugin
    classes; the server's step is ``lr`` times the aggregate. Defaults ``τ = 10, L = 1`` are those of
    the authors' research code (ByzFL uses τ = 100, L = 1; Blades τ = 5, L = 5).

    Parameters
    ----------
    tau : float
        Clipping radius ``> 0`` (``rule-params``: ``tau``).
    iterations : int
        ``L >= 1`` (``rule-params``: ``iterations``).
    """

    name: ClassVar[str] = "centered-clipping"
    tau: float = 10.0
    iterations: int = 1

    def __post_init__(self) -> None:
        check_positive(self.tau, "tau")
        check_int(self.iterations, "iterations", low=1)

    def __call__(
        self, rows: torch.Tensor, state: torch.Tensor | None, server_round: int, scale: float = 1.0
    ) -> RuleStep:
        v = centered_clipping(rows, state, float(self.tau), self.iterations)
        return RuleStep(v, scale, v.clone(), {})


# The field's other defenses, one module per family; importing them registers their rules.
from . import rules_clustering, rules_fltrust, rules_selection  # noqa: E402,F401
