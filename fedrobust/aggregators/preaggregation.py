"""Pre-aggregation: maps of the (n, d) client vectors applied before a robust rule.

Robust rules lose accuracy when honest clients disagree (non-IID data): an honest spread looks
like an attack. Pre-aggregation shrinks that spread, or bounds what each row can weigh, before
the rule runs; the steps compose in order (``bucketing`` then ``nnm``, ...).

============== =================================================================================
``nnm``        nearest neighbour mixing: each row becomes the mean of its ``n − f`` nearest rows
               (itself included; Allouah, Farhadkhani, Guerraoui, Gupta, Pinot and Stephan, 2023,
               "Fixing by Mixing: A Recipe for Optimal Byzantine ML under Heterogeneity", AISTATS)
``bucketing``  a seeded random permutation, then the mean of each group of ``s`` consecutive rows:
               ``ceil(n / s)`` rows (Karimireddy, He and Jaggi, 2022, "Byzantine-Robust Learning on
               Heterogeneous Datasets via Bucketing", ICLR)
``arc``        adaptive robust clipping: the ``k = floor(2 (f / n) (n − f))`` largest-norm rows are
               clipped to the norm of the largest row left (Allouah, Guerraoui, Gupta, Jellouli,
               Rizk and Stephan, 2024, "Adaptive Gradient Clipping for Robust Federated Learning")
``clipping``   static norm clipping ``x_i ← min(1, c / ‖x_i‖) · x_i``
============== =================================================================================

The functions (:func:`nearest_neighbour_mixing`, :func:`bucketing`, :func:`adaptive_clipping`,
:func:`clip_rows`) are pure and run on CPU or CUDA unchanged. Like the rules they are scale-safe:
any finite float32 a minority of rows holds (up to 3.4e38) gives finite rows, distances come from
the centred float64 Gram matrix of :mod:`fedrobust.aggregators._gram`, and clipping factors are
applied in float64.

:class:`PreAggregation` is the parsed form of the run key ``pre-aggregation``, a comma-separated list
of steps, each ``name`` or ``name:key=value``; a further ``key=value`` after a comma belongs to the
step before it (``"bucketing:s=3,seed=1,nnm"`` is bucketing with ``s = 3`` and ``seed = 1``, then
NNM). ``f = -1`` (the default of ``nnm`` and ``arc``) means the run's expected number of Byzantine
clients per round, ``floor(byzantine-fraction · clients-per-round)``. After bucketing the rows are
buckets, of which at most ``f`` hold a Byzantine row: ``f`` is left as it is.

Examples
--------
>>> pre = PreAggregation.parse("bucketing:s=2,nnm:f=1", seed=0)
>>> pre
PreAggregation('bucketing:s=2,seed=0,nnm:f=1')
>>> rows = torch.tensor([[0.0], [1.0], [2.0], [3.0], [100.0], [101.0]])
>>> pre(rows, server_round=1).shape
torch.Size([3, 1])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import torch

from ..core.checks import all_finite, check_fraction, check_int, check_matrix, check_positive, check_seed
from ..core.params import _scalar
from ..core.rng import stream_generator
from ._chunks import column_blocks
from ._gram import centred_gram, row_norms, squared_distances

__all__ = [
    "PRE_AGGREGATORS",
    "PreAggregator",
    "PreAggregation",
    "NNM",
    "Bucketing",
    "ARC",
    "Clipping",
    "adaptive_clipping",
    "arc_count",
    "bucketing",
    "clip_rows",
    "nearest_neighbour_mixing",
]


# ----------------------------------------------------------------------------------- functions
def nearest_neighbour_mixing(x: torch.Tensor, f: int, *, inplace: bool = False) -> torch.Tensor:
    """Nearest neighbour mixing: row ``i`` becomes the mean of the ``n − f`` rows nearest to it.

    Allouah, Farhadkhani, Guerraoui, Gupta, Pinot and Stephan (2023), "Fixing by Mixing: A Recipe
    for Optimal Byzantine ML under Heterogeneity" (AISTATS). A row is always among its own
    neighbours; among rows at equal distance the lower index is taken first. The pairwise ℓ2
    distances come from one centred Gram matrix (float64; no finite row can overflow it).

    Parameters
    ----------
    x : torch.Tensor
        Client vectors, shape (n, d).
    f : int
        Assumed number of Byzantine rows, ``0 <= f < n`` (``f = 0``: every row becomes the mean).
    inplace : bool
        Write the mixed rows into ``x`` itself, one cache-sized column block at a time (every
        output column depends on that column only). This spares the allocation of a fresh (n, d)
        result, whose first touch of every page costs more than the mixing product itself on a
        CPU (about 60 ms for 148 MB); the values agree with the out-of-place result to float
        rounding (the product's kernel may sum in another order for another shape).

    Returns
    -------
    torch.Tensor
        Shape (n, d), in ``x``'s dtype and device (``x`` itself with ``inplace=True``).

    Examples
    --------
    >>> x = torch.tensor([[0.0], [1.0], [2.0], [30.0]])
    >>> nearest_neighbour_mixing(x, f=1).flatten().tolist()
    [1.0, 1.0, 1.0, 11.0]
    >>> y = x.clone()
    >>> nearest_neighbour_mixing(y, f=1, inplace=True) is y, y.flatten().tolist()
    (True, [1.0, 1.0, 1.0, 11.0])
    """
    check_matrix(x)
    n = x.shape[0]
    check_int(f, "f", low=0, high=n - 1)
    k = n - f
    dist = squared_distances(centred_gram(x))
    dist.fill_diagonal_(-1.0)  # each row is its own nearest neighbour, whatever duplicates it has
    # A stable order: equal distances keep the lower index first (torch.topk gives no such promise).
    nearest = torch.sort(dist, dim=1, stable=True).indices[:, :k]
    weights = torch.zeros(n, n, dtype=torch.float64, device=x.device)
    weights.scatter_(1, nearest, 1.0 / k)
    if inplace:
        for _, block in column_blocks(x):
            block.copy_(_mix(block, weights))
        return x
    return _mix(x, weights)


def _mix(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``weights @ x`` for row-stochastic ``weights``: convex combinations, which cannot overflow;
    formed in float64 when the input dtype's product is not finite."""
    if x.dtype == torch.float64:
        return weights @ x
    out = weights.to(x.dtype) @ x
    if not all_finite(out):
        out = (weights @ x.to(torch.float64)).to(x.dtype)
    return out


def bucketing(x: torch.Tensor, s: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Bucketing: the rows in a random order, then the mean of each group of ``s`` consecutive rows.

    Karimireddy, He and Jaggi (2022), "Byzantine-Robust Learning on Heterogeneous Datasets via
    Bucketing" (ICLR). With ``n`` not a multiple of ``s`` the last bucket has ``n mod s`` rows.

    Parameters
    ----------
    x : torch.Tensor
        Client vectors, shape (n, d).
    s : int
        Bucket size, ``>= 1`` (1: the rows, permuted).
    generator : torch.Generator, optional
        Draws the permutation (on ``x``'s device); torch's global RNG when omitted.

    Returns
    -------
    torch.Tensor
        Shape (ceil(n / s), d).

    Examples
    --------
    >>> x = torch.tensor([[0.0], [2.0], [4.0], [6.0], [8.0]])
    >>> out = bucketing(x, 2, torch.Generator().manual_seed(0))
    >>> out.shape, float(out.sum() * 2 - out[-1, 0])  # four rows in pairs, one alone
    (torch.Size([3, 1]), 20.0)
    """
    check_matrix(x)
    check_int(s, "s", low=1)
    n = x.shape[0]
    order = torch.randperm(n, generator=generator, device=generator.device if generator is not None else x.device)
    order = order.to(x.device)
    buckets = math.ceil(n / s)
    if x.device.type == "cpu":
        out = _bucket_means(x, order, s, buckets)
        if all_finite(out):
            return out
    weights = torch.zeros(buckets, n, dtype=torch.float64, device=x.device)
    bucket_of = torch.arange(n, device=x.device) // s
    sizes = torch.bincount(bucket_of, minlength=buckets).to(torch.float64)
    weights[bucket_of, order] = 1.0 / sizes[bucket_of]
    return _mix(x, weights)


def _bucket_means(x: torch.Tensor, order: torch.Tensor, s: int, buckets: int) -> torch.Tensor:
    """The bucket means in one streaming pass on the CPU: each row, scaled by 1/s, added into its
    bucket (``index_add_``, rows in index order) by column blocks that keep the output in cache; the
    last, smaller bucket rescaled. Not finite only where a sum of huge rows rounds past float's
    range, and then the caller recomputes in float64. (On accelerators the (buckets, n) product is
    cheap, and deterministic where atomic adds are not.)"""
    n, d = x.shape
    bucket_of = torch.empty(n, dtype=torch.long, device=x.device)
    bucket_of[order] = torch.arange(n, device=x.device) // s
    out = torch.zeros(buckets, d, dtype=x.dtype, device=x.device)
    block = max(4096, (1 << 19) // max(buckets, 1))
    for j in range(0, d, block):
        out[:, j : j + block].index_add_(0, bucket_of, x[:, j : j + block], alpha=1.0 / s)
    if n % s:
        out[-1] *= s / (n % s)
    return out


def clip_rows(x: torch.Tensor, c: float, *, inplace: bool = False) -> torch.Tensor:
    """Static clipping: ``x_i ← min(1, c / ‖x_i‖) · x_i`` (rows with a norm at most ``c`` unchanged).

    Parameters
    ----------
    x : torch.Tensor
        Client vectors, shape (n, d).
    c : float
        The largest norm a row keeps, ``> 0``.
    inplace : bool
        Scale the rows of ``x`` itself and return it (as ByzFL's ``Clipping`` does), rather than a
        new matrix: no (n, d) allocation. The same values either way.

    Examples
    --------
    >>> clip_rows(torch.tensor([[3.0, 4.0], [0.3, 0.4]]), 1.0)
    tensor([[0.6000, 0.8000],
            [0.3000, 0.4000]])
    """
    check_matrix(x)
    check_positive(c, "c")
    limit = torch.full((x.shape[0],), float(c), dtype=torch.float64, device=x.device)
    return _clip_to(x, row_norms(x), limit, inplace)


# The smallest clipping factor applied in float32: far above float32's smallest normal (1.2e-38),
# so the factor keeps its 24 bits; a 3e38 row clipped to 1 needs about 3e-39 and goes through float64.
_FLOAT32_FACTOR = 1e-30


def _clip_to(x: torch.Tensor, norms: torch.Tensor, limit: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """Rows with ``norms > limit`` scaled to norm ``limit``: one multiply pass when every factor
    is an ordinary float32, else those rows in float64 (a 3e38 row clipped to 1 needs a factor
    near float32's smallest normal). ``inplace``: into ``x`` itself."""
    mask = norms > limit
    if not bool(mask.any()):
        return x if inplace else x.clone()
    factor = torch.where(mask, limit / torch.where(mask, norms, 1.0), 1.0)
    if x.dtype == torch.float64 or float(factor.min()) >= _FLOAT32_FACTOR:
        # One pass; unclipped rows are multiplied by exactly 1.
        return x.mul_(factor.to(x.dtype)[:, None]) if inplace else x * factor.to(x.dtype)[:, None]
    out = x if inplace else x.clone()
    over = torch.nonzero(mask).flatten()
    out[over] = (x[over].to(torch.float64) * factor[over, None]).to(x.dtype)
    return out


def arc_count(n: int, f: int) -> int:
    """The rows ARC clips: ``k = floor(2 (f / n) (n − f))``.

    Examples
    --------
    >>> arc_count(10, 2), arc_count(10, 0), arc_count(17, 4)
    (3, 0, 6)
    """
    return int(math.floor(2.0 * f * (n - f) / n + 1e-9))


def adaptive_clipping(x: torch.Tensor, f: int, *, inplace: bool = False) -> torch.Tensor:
    """Adaptive robust clipping (ARC): the ``k = floor(2 (f / n) (n − f))`` rows of largest norm
    are clipped to the norm of the largest of the others.

    Allouah, Guerraoui, Gupta, Jellouli, Rizk and Stephan (2024), "Adaptive Gradient Clipping for
    Robust Federated Learning". Norms are exact for any finite row (float64, no overflow); among
    equal norms the higher index is clipped first.

    Parameters
    ----------
    x : torch.Tensor
        Client vectors, shape (n, d).
    f : int
        Assumed number of Byzantine rows, ``0 <= f < n`` (``k`` is at most ``n − 1``).
    inplace : bool
        Clip the rows of ``x`` itself and return it (as ByzFL's ``ARC`` does), rather than a new
        matrix. The same values either way.

    Examples
    --------
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.0, -40.0], [0.5, 0.0]])
    >>> adaptive_clipping(x, f=1)  # k = floor(2 * 1/5 * 4) = 1: the -40 row clipped to norm 3
    tensor([[ 1.0000,  0.0000],
            [ 0.0000,  2.0000],
            [ 3.0000,  0.0000],
            [ 0.0000, -3.0000],
            [ 0.5000,  0.0000]])
    """
    check_matrix(x)
    n = x.shape[0]
    check_int(f, "f", low=0, high=n - 1)
    k = min(arc_count(n, f), n - 1)
    if k == 0:
        return x if inplace else x.clone()
    norms = row_norms(x)
    order = torch.sort(norms, stable=True).indices  # ascending; equal norms: lower index first
    limit = torch.full_like(norms, float(norms[order[n - k - 1]]))
    clipped = torch.zeros(n, dtype=torch.bool, device=x.device)
    clipped[order[n - k:]] = True
    return _clip_to(x, torch.where(clipped, norms, torch.zeros_like(norms)), limit, inplace)


# ------------------------------------------------------------------------------- step objects
@dataclass(frozen=True)
class PreAggregator:
    """Base class of a pre-aggregation step: ``step(rows, server_round) -> rows``.

    Subclasses are frozen dataclasses of their parameters, named as in the ``pre-aggregation``
    strings (``nnm:f=2``).
    """

    name: ClassVar[str] = ""
    #: Whether ``__call__`` takes ``inplace=True``, to overwrite rows nobody else holds
    #: (:class:`PreAggregation` passes it for the rows it owns).
    works_in_place: ClassVar[bool] = False

    def __call__(self, rows: torch.Tensor, server_round: int) -> torch.Tensor:
        raise NotImplementedError

    def parameters(self) -> dict[str, Any]:
        """The step's parameters, for logs and the string form."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _RUN_FILLED}

    def spec(self) -> str:
        """The ``name:key=value,...`` form (what :meth:`PreAggregation.parse` reads back)."""
        params = ",".join(f"{k}={v}" for k, v in self.parameters().items())
        return f"{self.name}:{params}" if params else self.name


# Fields the run (or the plugin's rule) fills in: not part of the step's string form.
_RUN_FILLED = ("byzantine_fraction", "clients_per_round")


@dataclass(frozen=True)
class _CountStep(PreAggregator):
    """A step that assumes ``f`` Byzantine rows (-1: ``floor(byzantine_fraction · c)``)."""

    f: int = -1
    byzantine_fraction: float | None = None
    clients_per_round: int = 0

    def __post_init__(self) -> None:
        check_int(self.f, "f", low=-1)
        if self.byzantine_fraction is not None:
            check_fraction(self.byzantine_fraction, "byzantine_fraction", upper=1.0)
        elif self.f < 0:
            raise ValueError(
                f"{self.name} needs f (e.g. '{self.name}:f=2'): there is no byzantine-fraction to derive it from"
            )
        check_int(self.clients_per_round, "clients_per_round", low=0)

    def f_for(self, n: int) -> int:
        """The round's ``f`` for ``n`` rows, at most ``n − 1``."""
        from .rules import assumed_f

        return min(assumed_f(self.f, self.byzantine_fraction or 0.0, self.clients_per_round, n), n - 1)


@dataclass(frozen=True)
class NNM(_CountStep):
    """Nearest neighbour mixing (:func:`nearest_neighbour_mixing`) with the round's ``f``."""

    name: ClassVar[str] = "nnm"

    works_in_place: ClassVar[bool] = True

    def __call__(self, rows: torch.Tensor, server_round: int, *, inplace: bool = False) -> torch.Tensor:
        return nearest_neighbour_mixing(rows, self.f_for(rows.shape[0]), inplace=inplace)


@dataclass(frozen=True)
class ARC(_CountStep):
    """Adaptive robust clipping (:func:`adaptive_clipping`) with the round's ``f``."""

    name: ClassVar[str] = "arc"

    works_in_place: ClassVar[bool] = True

    def __call__(self, rows: torch.Tensor, server_round: int, *, inplace: bool = False) -> torch.Tensor:
        return adaptive_clipping(rows, self.f_for(rows.shape[0]), inplace=inplace)


@dataclass(frozen=True)
class Bucketing(PreAggregator):
    """Bucketing (:func:`bucketing`) in buckets of ``s`` (default 2, as FLPoison; ByzFL's default
    ``s = 1`` only permutes the rows), the permutation seeded by ``(seed, round)``."""

    name: ClassVar[str] = "bucketing"
    s: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        check_int(self.s, "s", low=1)
        check_seed(self.seed)

    def __call__(self, rows: torch.Tensor, server_round: int) -> torch.Tensor:
        generator = stream_generator("bucketing", self.seed, server_round, device=rows.device)
        return bucketing(rows, self.s, generator)


@dataclass(frozen=True)
class Clipping(PreAggregator):
    """Static clipping (:func:`clip_rows`) at norm ``c`` (default 2.0, as ByzFL)."""

    name: ClassVar[str] = "clipping"
    c: float = 2.0

    def __post_init__(self) -> None:
        if not (isinstance(self.c, (int, float)) and not isinstance(self.c, bool) and math.isfinite(self.c) and self.c > 0):
            raise ValueError(f"c must be a finite number > 0, got {self.c!r}")

    works_in_place: ClassVar[bool] = True

    def __call__(self, rows: torch.Tensor, server_round: int, *, inplace: bool = False) -> torch.Tensor:
        return clip_rows(rows, float(self.c), inplace=inplace)


PRE_AGGREGATORS: dict[str, type[PreAggregator]] = {cls.name: cls for cls in (NNM, Bucketing, ARC, Clipping)}
"""Pre-aggregation step classes by name (the names of the ``pre-aggregation`` run key)."""


class PreAggregation(Sequence):
    """The steps of a ``pre-aggregation`` value, applied in order: ``pre(rows, server_round)``.

    Parameters
    ----------
    steps : sequence of PreAggregator
        The steps.
    """

    def __init__(self, steps: Sequence[PreAggregator]) -> None:
        for step in steps:
            if not isinstance(step, PreAggregator):
                raise TypeError(f"a pre-aggregation step must be a PreAggregator (e.g. NNM(f=2)), got {step!r}")
        self.steps = tuple(steps)

    @classmethod
    def parse(
        cls, text: str, *, byzantine_fraction: float | None = None, clients_per_round: int = 0, seed: int = 0
    ) -> PreAggregation:
        """The steps a ``pre-aggregation`` string names (see the module docstring).

        ``byzantine_fraction`` and ``clients_per_round`` give ``f = -1`` its value (None: every
        step that needs ``f`` must name it); ``seed`` is bucketing's default seed (the run's).

        Raises
        ------
        ValueError
            For an unknown step, a parameter the step does not take, or a value out of range.

        Examples
        --------
        >>> PreAggregation.parse("nnm, clipping:c=1.5", byzantine_fraction=0.2).steps
        (NNM(f=-1, byzantine_fraction=0.2, clients_per_round=0), Clipping(c=1.5))
        >>> PreAggregation.parse("nnm:k=3", byzantine_fraction=0.2)
        Traceback (most recent call last):
        ...
        ValueError: pre-aggregation: nnm takes no parameter 'k' (it takes f)
        """
        items: list[tuple[str, dict[str, Any]]] = []
        for token in filter(None, (part.strip() for part in str(text).split(","))):
            head, colon, rest = token.partition(":")
            if not colon and "=" in head:  # key=value continuing the previous step
                if not items:
                    raise ValueError(f"pre-aggregation: {token!r} comes before any step name")
                pair = head
            else:
                items.append((head.strip(), {}))
                pair = rest
            if pair.strip():
                key, eq, raw = pair.partition("=")
                if not eq or not key.strip():
                    raise ValueError(f"pre-aggregation: expected key=value after {items[-1][0]!r}, got {pair!r}")
                items[-1][1][key.strip().replace("-", "_")] = _scalar(raw.strip())
        steps = []
        for name, params in items:
            step_class = PRE_AGGREGATORS.get(name)
            if step_class is None:
                raise ValueError(f"pre-aggregation: unknown step {name!r}; known: {', '.join(PRE_AGGREGATORS)}")
            own = [f.name for f in fields(step_class) if f.name not in _RUN_FILLED]
            for key in params:
                if key not in own:
                    raise ValueError(f"pre-aggregation: {name} takes no parameter {key!r} (it takes {', '.join(own)})")
            filled: dict[str, Any] = {}
            if issubclass(step_class, _CountStep):
                filled = {"byzantine_fraction": byzantine_fraction, "clients_per_round": clients_per_round}
            if "seed" in own and "seed" not in params:
                filled["seed"] = seed
            try:
                steps.append(step_class(**{**filled, **params}))
            except (TypeError, ValueError) as err:
                raise ValueError(f"pre-aggregation: {name}: {err}") from None
        return cls(steps)

    @classmethod
    def from_config(cls, cfg: Any) -> PreAggregation | None:
        """The run's ``pre-aggregation`` (``f = -1`` from its ``byzantine-fraction`` and
        ``clients-per-round``, bucketing seeded by its ``seed``), or None when it names no step."""
        text = str(getattr(cfg, "pre_aggregation", "") or "")
        if not text.strip(" ,"):
            return None
        return cls.parse(text, byzantine_fraction=cfg.byzantine_fraction, clients_per_round=cfg.clients_per_round,
                         seed=cfg.seed)

    def __call__(self, rows: torch.Tensor, server_round: int, *, owned: bool = False) -> torch.Tensor:
        """The rows after every step. ``owned``: the caller holds ``rows`` for this call only, so
        the in-place steps (clipping, ARC, NNM) may overwrite them; a step's output that shares no memory with ``rows``
        is overwritten in any case. The caller's ``rows`` are otherwise left as they are."""
        given = rows.untyped_storage().data_ptr()
        for step in self.steps:
            mine = owned or rows.untyped_storage().data_ptr() != given
            rows = step(rows, server_round, inplace=True) if step.works_in_place and mine else step(rows, server_round)
        return rows

    def __getitem__(self, index):  # type: ignore[override]
        return self.steps[index]

    def __len__(self) -> int:
        return len(self.steps)

    def spec(self) -> str:
        """The string form (``"bucketing:s=2,seed=0,nnm:f=-1"``)."""
        return ",".join(step.spec() for step in self.steps)

    def __repr__(self) -> str:
        return f"PreAggregation({self.spec()!r})"
