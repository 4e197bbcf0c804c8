"""Attack any Flower strategy: :class:`Attacked` turns the Byzantine nodes' replies into an
omniscient attack's crafted vectors before the wrapped strategy aggregates.

``Attacked(strategy, attack="alie", byzantine=0.2)`` takes a strategy of either Flower API (Flower's
own ``FedAvg``, ``Krum``, ``MultiKrum``, ``Bulyan``, ``FedMedian``, ``FedTrimmedAvg``, a user's own,
a :mod:`fedrobust.plugin` class) and returns a strategy of the same API
(:class:`~fedrobust.plugin.attacked_legacy.LegacyAttacked`, a ``flwr.server.strategy.Strategy``, or
:class:`~fedrobust.plugin.attacked_message.MessageAttacked`, a ``flwr.serverapp.strategy.Strategy``)
that delegates everything to the wrapped one. Only the aggregation of training replies changes:

1. **Which replies are Byzantine.** ``byzantine`` a fraction ψ in [0, 1): floor(ψ·N) of all N
   nodes, drawn with :func:`~fedrobust.attacks.byzantine_ids` (seeded by ``seed``) from the sorted
   node ids (legacy: client ids) when the first round is configured, and fixed for the run. Or a
   collection of partition ids: a reply is Byzantine when the ``partition-id`` its ClientApp reports
   in its fit / train metrics is one of them (the ClientApp adds
   ``metrics["partition-id"] = context.node_config["partition-id"]``); a reply without it counts as
   honest (one warning per run).
2. **What the adversary sees.** Only this round's replies, from nodes the round was sent to. With
   ``rows="updates"`` (default) the honest rows are the updates Δ_i = w_i − w_t, flat, of the
   floating-point arrays, w_t being the arrays the wrapped strategy sent this round; the crafted
   reply is w_t + b. With ``rows="weights"`` the rows are the w_i and the crafted reply is b. (IPM's
   b = −ε·μ only makes sense on updates.) A reply that failed, is not finite or does not match the
   model's arrays (shapes, dtypes, record keys) is neither an honest row nor crafted: it is passed on
   as it is, for the wrapped strategy's own validation.
3. **What is written back.** Each crafted row in the honest replies' exact format: the same array
   shapes and dtypes (and, in the Message API, the same ArrayRecord key and array keys; the
   MetricRecord kept); num-examples and metrics kept; non-floating arrays kept from the Byzantine
   reply itself.
4. **What the attack gets** (:class:`~fedrobust.attacks.AdversaryView`): ``n`` = honest rows + f,
   ``f`` = the Byzantine replies crafted, ``model`` = w_t flat, ``rule`` = the wrapped strategy's class
   name, ``rule_params`` = its public scalar attributes (and a fedrobust rule's parameters),
   ``generator`` seeded from (``seed``, round) and, for adaptive attacks (``needs_aggregate``),
   ``aggregate(rows)``: a deep copy of the wrapped strategy aggregates synthetic replies built from
   the rows (equal weights: the round's median number of examples) and the result is returned in the
   rows' space. That is one deep copy and one aggregation per call: a line search pays it per step.

The adversary never crashes the server: with no honest row, or when the attack fails, the
Byzantine replies go on unchanged (with a warning). Each round adds to the wrapped strategy's fit /
train metrics ``byzantine-replies`` (f), ``attack-distance`` (mean ‖b_j − μ‖ of the crafted rows to
the honest rows' mean; 0 when f = 0), ``byzantine-nodes`` and, when known, ``byzantine-partitions``
(Message API: lists of ints; legacy: comma-separated strings), and appends a dict to
:attr:`Attacked.history`.

Examples
--------
>>> from flwr.serverapp.strategy import FedAvg
>>> strategy = Attacked(FedAvg(), attack="ipm", attack_params={"epsilon": 100.0}, byzantine=0.2)
>>> type(strategy).__name__, isinstance(strategy, Attacked)
('MessageAttacked', True)
>>> strategy
Attacked(FedAvg, attack=IPM(epsilon=100.0), byzantine=0.2, rows='updates', seed=0)
>>> strategy.fraction_train  # everything else is the wrapped strategy's
1.0
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from logging import WARNING
from typing import Any

import numpy as np
import torch
from flwr.common.logger import log

from ..attacks import AdversaryView, OmniscientAttack, byzantine_ids, get_attack
from ..core.checks import check_seed
from ..core.rng import stream_generator
from .weights import mismatch

__all__ = ["Attacked", "ROWS"]

ROWS = ("updates", "weights")
"""What the adversary's rows are: the updates w_i − w_t (default) or the weights w_i."""



@dataclass
class Reply:
    """One training reply as the adversary reads it (built by the API modules)."""

    node: int | str
    """The node id (Message API) or client id (legacy)."""
    partition: int | None
    """The ``partition-id`` the reply reports, or None."""
    arrays: list[np.ndarray] | None
    """Its arrays in the model's order; None when it has none to read (failed, undecodable, other keys)."""
    weight: float | None = None
    """Its number of examples, when readable."""


@dataclass
class SentModel:
    """The arrays the wrapped strategy sent in a round, and to whom."""

    server_round: int
    arrays: list[np.ndarray]
    nodes: frozenset
    keys: tuple[str, ...] = ()
    """The Message API's ArrayRecord keys, in the order of ``arrays``."""


class Attacked:
    """A strategy of either Flower API whose Byzantine nodes' replies are crafted by an attack.

    ``Attacked(strategy, ...)`` returns a :class:`~fedrobust.plugin.attacked_legacy.LegacyAttacked`
    for a legacy strategy and a :class:`~fedrobust.plugin.attacked_message.MessageAttacked` for a
    Message-API one (both are ``Attacked`` instances); see the module docstring.

    Parameters
    ----------
    strategy : flwr.server.strategy.Strategy or flwr.serverapp.strategy.Strategy
        The strategy under attack; it aggregates the replies (with the crafted ones).
    attack : str or OmniscientAttack
        An omniscient attack's name (``"alie"``, ``"ipm"``, ...; :func:`~fedrobust.attacks.get_attack`)
        or instance.
    attack_params : dict, optional
        The attack's parameters (e.g. ``{"epsilon": 100.0}`` for ``ipm``).
    byzantine : float or collection of int
        A fraction ψ in [0, 1) of all nodes (a seeded set, fixed for the run), or partition ids.
    seed : int
        Seeds the Byzantine set and the attack's generator (with the round).
    rows : str
        ``"updates"`` (w_i − w_t, default) or ``"weights"`` (w_i).

    Attributes
    ----------
    strategy
        The wrapped strategy.
    attack : OmniscientAttack
    history : list of dict
        Per aggregated round: ``round``, ``byzantine-replies``, ``honest-replies``, ``nodes``,
        ``partitions``, ``attack-distance`` and ``skipped`` (None, or why nothing was crafted).
    byzantine_nodes : frozenset or None
        The fraction's Byzantine node ids once drawn (None with partition ids).
    """

    def __new__(cls, strategy: Any = None, *args: Any, **kwargs: Any) -> Attacked:
        if cls is Attacked:
            cls = _api_class(strategy)
        return super().__new__(cls)

    def __init__(
        self,
        strategy: Any,
        attack: str | OmniscientAttack = "alie",
        attack_params: dict[str, Any] | None = None,
        byzantine: float | Collection[int] = 0.2,
        seed: int = 0,
        rows: str = "updates",
    ) -> None:
        if isinstance(strategy, Attacked):
            raise TypeError("the strategy is already Attacked")
        self.strategy = strategy
        built = get_attack(attack, **dict(attack_params or {}))
        if not isinstance(built, OmniscientAttack):
            raise TypeError(
                f"Attacked needs an omniscient attack (one that crafts the Byzantine replies from the honest "
                f"ones), got {built.name!r} of kind {built.kind!r}"
            )
        self.attack = built
        self.fraction, self.partitions = _parse_byzantine(byzantine)
        self.seed = check_seed(seed)
        if rows not in ROWS:
            raise ValueError(f"rows must be one of {', '.join(ROWS)}, got {rows!r}")
        self.rows = rows
        self.history: list[dict[str, Any]] = []
        self.byzantine_nodes: frozenset | None = None
        self._sent: SentModel | None = None
        self._warned_partition = False

    def __getattr__(self, name: str) -> Any:
        """Everything else is the wrapped strategy's (its attributes and methods)."""
        strategy = self.__dict__.get("strategy")
        if strategy is None or name.startswith("__"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(strategy, name)

    def __repr__(self) -> str:
        byz = self.fraction if self.partitions is None else sorted(self.partitions)
        return (f"Attacked({type(self.strategy).__name__}, attack={self.attack!r}, byzantine={byz!r}, "
                f"rows={self.rows!r}, seed={self.seed})")

    # ------------------------------------------------------------------ shared by both APIs
    def _draw_byzantine(self, node_ids: Callable[[], Sequence[int | str]]) -> None:
        """With a fraction: draw the fixed Byzantine set from all node ids, once."""
        if self.fraction is None or self.byzantine_nodes is not None:
            return
        ids = sorted(node_ids())
        if ids:
            self.byzantine_nodes = frozenset(ids[i] for i in byzantine_ids(len(ids), self.fraction, "fixed", self.seed))

    def _is_byzantine(self, reply: Reply) -> bool:
        if self.partitions is None:
            return self.byzantine_nodes is not None and reply.node in self.byzantine_nodes
        if reply.partition is None:
            if not self._warned_partition:
                self._warned_partition = True
                log(WARNING, "Attacked: a reply from node %s reports no 'partition-id' in its metrics; it counts as "
                    "honest (the ClientApp adds metrics[\"partition-id\"] = context.node_config[\"partition-id\"])",
                    reply.node)
            return False
        return reply.partition in self.partitions

    def _craft_round(
        self,
        server_round: int,
        replies: Sequence[Reply],
        preview: Callable[[list[list[np.ndarray]], float], list[np.ndarray] | None],
    ) -> tuple[dict[int, list[np.ndarray]], dict[str, Any]]:
        """The crafted arrays by reply position, and the round's record (see :attr:`history`).

        ``preview(replies_arrays, weight)`` aggregates synthetic replies with a copy of the wrapped
        strategy and returns the aggregate's arrays (None when it returns none).
        """
        record: dict[str, Any] = {"round": server_round, "byzantine-replies": 0, "honest-replies": 0,
                                  "nodes": [], "partitions": [], "attack-distance": 0.0, "skipped": None}
        sent = self._sent
        if sent is None or sent.server_round != server_round:
            record["skipped"] = "no model was sent this round (configure was not called for it)"
            log(WARNING, "Attacked: round %s: %s; replies unchanged", server_round, record["skipped"])
            self.history.append(record)
            return {}, record
        like = sent.arrays
        floating = [i for i, a in enumerate(like) if np.issubdtype(a.dtype, np.floating)]
        honest: list[int] = []
        byzantine: list[int] = []
        for position, reply in enumerate(replies):
            if reply.node not in sent.nodes or not _usable(reply.arrays, like, floating):
                continue  # not this round's, or for the wrapped strategy's own validation
            (byzantine if self._is_byzantine(reply) else honest).append(position)
        record["honest-replies"] = len(honest)
        if not byzantine:
            self.history.append(record)
            return {}, record
        if not floating or not honest:
            record["skipped"] = "no honest reply to craft from" if floating else "the model has no floating-point array"
            log(WARNING, "Attacked: round %s: %s; the %s Byzantine replies go on unchanged", server_round,
                record["skipped"], len(byzantine))
            self.history.append(record)
            return {}, record
        dtype = np.float64 if any(like[i].dtype == np.float64 for i in floating) else np.float32
        x = _flatten(like, floating, dtype)
        base = x if self.rows == "updates" else np.zeros_like(x)
        honest_rows = torch.from_numpy(np.stack([_flatten(replies[p].arrays, floating, dtype) - base for p in honest]))
        weights = [replies[p].weight for p in honest + byzantine if replies[p].weight is not None]
        weight = float(np.median(weights)) if weights else 1.0

        def aggregate(rows: torch.Tensor) -> torch.Tensor:
            arrays = [_unflatten(base + r, like, floating) for r in rows.detach().cpu().numpy().astype(dtype)]
            with _quiet_flower():
                out = preview(arrays, weight)
            if out is None:
                raise ValueError(f"{type(self.strategy).__name__} returned no aggregate for the preview")
            return torch.from_numpy(_flatten(out, floating, dtype) - base).to(rows.dtype)

        view = AdversaryView(
            n=len(honest) + len(byzantine), f=len(byzantine), server_round=server_round,
            model=torch.from_numpy(x), rule=type(self.strategy).__name__, rule_params=_rule_params(self.strategy),
            aggregate=aggregate if self.attack.needs_aggregate else None,
            generator=stream_generator("adversary", self.seed, server_round),  # as in fedrobust's own server loop
        )
        try:
            crafted = self.attack.craft(honest_rows, view).detach().cpu().numpy()
        except Exception as err:  # noqa: BLE001 - the adversary must never stop the server
            record["skipped"] = f"the attack failed: {type(err).__name__}: {err}"
            log(WARNING, "Attacked: round %s: %s; the Byzantine replies go on unchanged", server_round, record["skipped"])
            self.history.append(record)
            return {}, record
        mu = honest_rows.to(torch.float64).mean(dim=0).numpy()
        distance = float(np.mean(np.linalg.norm(crafted.astype(np.float64) - mu, axis=1)))
        out: dict[int, list[np.ndarray]] = {}
        for row, position in zip(crafted, byzantine):
            out[position] = _unflatten(base + row.astype(dtype), replies[position].arrays, floating)
        record.update({
            "byzantine-replies": len(byzantine),
            "nodes": [replies[p].node for p in byzantine],
            "partitions": [replies[p].partition for p in byzantine if replies[p].partition is not None],
            "attack-distance": distance if math.isfinite(distance) else float("inf"),
        })
        self.history.append(record)
        return out, record


def _api_class(strategy: Any) -> type[Attacked]:
    from flwr.server.strategy import Strategy as LegacyStrategy
    from flwr.serverapp.strategy import Strategy as MessageStrategy

    if isinstance(strategy, LegacyStrategy):
        from .attacked_legacy import LegacyAttacked

        return LegacyAttacked
    if isinstance(strategy, MessageStrategy):
        from .attacked_message import MessageAttacked

        return MessageAttacked
    raise TypeError(
        "Attacked needs a Flower strategy (flwr.server.strategy.Strategy or flwr.serverapp.strategy.Strategy), "
        f"got {type(strategy).__name__}"
    )


def _parse_byzantine(byzantine: Any) -> tuple[float | None, frozenset[int] | None]:
    """(fraction, None) or (None, partition ids).

    Examples
    --------
    >>> _parse_byzantine(0.25), _parse_byzantine([3, 1])
    ((0.25, None), (None, frozenset({1, 3})))
    """
    if isinstance(byzantine, bool):
        raise TypeError("byzantine must be a fraction in [0, 1) or a collection of partition ids, got a bool")
    if isinstance(byzantine, int) and byzantine == 0:
        byzantine = 0.0
    if isinstance(byzantine, float):
        if not 0.0 <= byzantine < 1.0:
            raise ValueError(f"byzantine as a fraction must lie in [0, 1), got {byzantine}")
        return byzantine, None
    if isinstance(byzantine, int):
        raise TypeError(f"byzantine must be a fraction in [0, 1) or a collection of partition ids, got {byzantine}; "
                        f"for partition {byzantine} alone write [{byzantine}]")
    if isinstance(byzantine, (str, bytes)) or not isinstance(byzantine, Collection):
        raise TypeError(f"byzantine must be a fraction or a collection of partition ids, got {type(byzantine).__name__}")
    ids = list(byzantine)
    if any(isinstance(i, bool) or not isinstance(i, (int, np.integer)) or i < 0 for i in ids):
        raise ValueError(f"partition ids must be ints >= 0, got {ids}")
    return None, frozenset(int(i) for i in ids)


def partition_of(metrics: Any) -> int | None:
    """The ``partition-id`` a reply's metrics report, or None."""
    value = metrics.get("partition-id") if hasattr(metrics, "get") else None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    return int(value) if float(value).is_integer() else None


def _usable(arrays: list[np.ndarray] | None, like: list[np.ndarray], floating: list[int]) -> bool:
    if arrays is None or mismatch(arrays, like) is not None:
        return False
    return all(bool(np.isfinite(arrays[i]).all()) for i in floating)


def _flatten(arrays: Sequence[np.ndarray], floating: list[int], dtype: type) -> np.ndarray:
    return np.concatenate([np.asarray(arrays[i], dtype=dtype).reshape(-1) for i in floating])


def _unflatten(flat: np.ndarray, like: Sequence[np.ndarray], floating: list[int]) -> list[np.ndarray]:
    """``like``'s arrays with the floating ones taken from ``flat``, in their own shapes and dtypes."""
    out = [np.array(a, copy=True) for a in like]
    start = 0
    for i in floating:
        size = out[i].size
        out[i] = flat[start:start + size].reshape(out[i].shape).astype(out[i].dtype)
        start += size
    return out


def _rule_params(strategy: Any) -> dict[str, Any]:
    """The strategy's public scalar attributes, and a fedrobust rule's parameters."""
    params = {k: v for k, v in vars(strategy).items()
              if not k.startswith("_") and isinstance(v, (bool, int, float, str))}
    rule = getattr(getattr(strategy, "aggregator", None), "rule", None)
    if rule is not None and hasattr(rule, "parameters"):
        params.update(rule.parameters())
    return params



@contextlib.contextmanager
def _quiet_flower() -> Iterator[None]:
    """Flower's INFO lines of a preview aggregation stay out of the log."""
    logger = logging.getLogger("flwr")
    level = logger.level
    logger.setLevel(max(level, WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def deep_copy(strategy: Any) -> Any:
    """A deep copy of the wrapped strategy, for a preview aggregation that must not change its state."""
    return copy.deepcopy(strategy)
