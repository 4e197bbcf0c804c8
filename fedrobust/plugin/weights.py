"""The weights protocol: robust aggregation of the new models that ordinary Flower clients send.

An ordinary Flower client (a quickstart ``NumPyClient`` or ``ClientApp``) trains the global model
locally and replies with its new weights. :class:`WeightsAggregator` treats every reply as
untrusted input, validates it against the global model with :mod:`fedrobust.core.validation` and moves
the global model by a robust :mod:`~fedrobust.aggregators.rules` rule of the accepted clients' deltas:

1. a reply must hold exactly the global model's arrays: the same number, each a numpy array of the
   same shape and dtype; every floating-point entry finite and of magnitude at most
   :data:`~fedrobust.core.validation.MAGNITUDE_BOUND`. Anything else (and a reply the caller could not
   decode) is rejected, counted and logged with its reason, never raised;
2. the floating-point arrays of each accepted reply are flattened into one row, minus the flat
   global model: the (n, d) delta matrix (float32; float64 when the model has float64 arrays);
3. the rule maps the deltas to an update ``u`` and the new global model is ``x + u``. A step that
   would leave the model (or the rule's state) non-finite is not applied (``skipped_step``).

Non-floating arrays (e.g. a batch-norm layer's ``num_batches_tracked``) are validated but not
aggregated: the global model keeps its own values.

Examples
--------
>>> from fedrobust.aggregators.rules import GMDRule
>>> x = [np.zeros((2, 2), np.float32), np.zeros(2, np.float32)]
>>> honest = [[a + 0.1 for a in x] for _ in range(4)]
>>> attacker = [a - 1e6 for a in x]
>>> nan = [np.full((2, 2), np.nan, np.float32), x[1]]
>>> out = WeightsAggregator(GMDRule()).aggregate(1, x, [*honest, attacker, nan])
>>> np.allclose(out.arrays[0], 0.1), out.metrics["accepted_clients"], out.metrics["rejected_clients"]
(True, 5, 1)
>>> out.rejections
[(5, '4 non-finite value(s) (NaN or ±Inf)')]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from logging import WARNING
from typing import NamedTuple

import numpy as np
import torch
from flwr.common.logger import log

from ..core.checks import all_finite
from ..aggregators.preaggregation import PreAggregation, PreAggregator
from ..aggregators.rules import Rule, rule_parameters
from ..core.validation import RowStack, check_arrays

__all__ = ["WeightsAggregator", "WeightsResult", "mismatch", "pop_aggregator"]

Reply = Sequence[np.ndarray] | str
"""A reply's arrays, or the reason it could not be decoded."""


class WeightsResult(NamedTuple):
    """The outcome of :meth:`WeightsAggregator.aggregate`."""

    arrays: list[np.ndarray] | None
    """The new global model, in the global model's shapes and dtypes; None when no reply was accepted."""
    accepted: list[int]
    """Positions (in the replies given) of the accepted replies."""
    rejections: list[tuple[int, str]]
    """(position, reason) of every rejected reply."""
    metrics: dict[str, int | float]
    """``accepted_clients``, ``rejected_clients``, ``skipped_step`` (0/1) and the rule's metrics."""


def mismatch(arrays: Sequence[object], like: Sequence[np.ndarray]) -> str | None:
    """Why ``arrays`` are not arrays of the same count, shapes and dtypes as ``like``, or None.

    Examples
    --------
    >>> like = [np.zeros((2, 3), np.float32), np.zeros(3, np.int64)]
    >>> mismatch([np.zeros((2, 3), np.float32), np.zeros(3, np.int64)], like) is None
    True
    >>> mismatch([np.zeros((2, 3), np.float32)], like)
    'expected 2 arrays, got 1'
    >>> mismatch([np.zeros((2, 3), np.float32), np.zeros(3, np.float64)], like)
    'array 1 has dtype float64, expected int64'
    >>> mismatch([np.zeros((3, 2), np.float32), np.zeros(3, np.int64)], like)
    'array 0 has shape (3, 2), expected (2, 3)'
    """
    return check_arrays(arrays, [ref.shape for ref in like], [ref.dtype for ref in like])


class WeightsAggregator:
    """Validate client models against the global model and apply a robust rule to their deltas.

    Parameters
    ----------
    rule : Rule
        The robust rule (:data:`fedrobust.aggregators.rules.RULES`).
    device : str or torch.device
        Where the deltas are aggregated (e.g. ``"cuda"`` for large models).
    pre_aggregation : str or sequence of PreAggregator, optional
        Applied to the deltas before the rule (:mod:`fedrobust.aggregators.preaggregation`):
        a string such as ``"bucketing:s=2,nnm"`` or steps such as ``[NNM(f=2)]``. In a string,
        ``f`` of ``nnm`` / ``arc`` defaults to the rule's ``byzantine_fraction`` of the round's
        replies when the rule has one (Krum, Bulyan, ...); otherwise it must be given (``nnm:f=2``).

    Attributes
    ----------
    state : torch.Tensor or None
        The rule's server state (BGMD's mean memory), carried from round to round.
    """

    def __init__(
        self, rule: Rule, device: str | torch.device = "cpu",
        pre_aggregation: str | Sequence[PreAggregator] | None = None,
    ) -> None:
        if not isinstance(rule, Rule):
            raise TypeError(f"rule must be a fedrobust.aggregators.rules.Rule, got {type(rule).__name__}")
        self.rule = rule
        self.device = torch.device(device)
        self.state: torch.Tensor | None = None
        self.pre_aggregation = _pre_aggregation(rule, pre_aggregation)

    def aggregate(
        self,
        server_round: int,
        global_arrays: Sequence[np.ndarray],
        replies: Sequence[Reply],
        senders: Sequence[str] | None = None,
    ) -> WeightsResult:
        """One round: validate ``replies`` against ``global_arrays``, stack the deltas, apply the rule.

        Parameters
        ----------
        server_round : int
            The round (seeds a rule's random choices, e.g. BGMD's block).
        global_arrays : sequence of numpy.ndarray
            The global model the clients were sent, in wire order.
        replies : sequence
            Per reply, its arrays in wire order, or a string: why it could not be decoded.
        senders : sequence of str, optional
            Per reply, who sent it (e.g. ``"node 7"``): named in the log when the reply is
            rejected. The reply's position in ``replies`` when omitted.

        Raises
        ------
        ValueError
            If the global model has no floating-point array (there is nothing to aggregate).
        """
        like = [np.asarray(a) for a in global_arrays]
        floating = [i for i, a in enumerate(like) if np.issubdtype(a.dtype, np.floating)]
        if not floating:
            raise ValueError("the global model has no floating-point array to aggregate")
        dtype = np.float64 if any(like[i].dtype == np.float64 for i in floating) else np.float32
        flat_global = np.concatenate([like[i].reshape(-1).astype(dtype, copy=False) for i in floating])
        stack = RowStack(len(replies), flat_global.size, dtype)

        def fill(reply: Reply) -> Callable[[np.ndarray], str | None]:
            def write(row: np.ndarray) -> str | None:
                reason = reply if isinstance(reply, str) else mismatch(reply, like)
                if reason is None:
                    np.concatenate([reply[i].reshape(-1) for i in floating], out=row, casting="same_kind")
                return reason
            return write

        rejections: list[tuple[int, str]] = []
        for position, reply in enumerate(replies):
            sender = f"reply {position}" if senders is None else senders[position]
            if stack.add(position, sender, fill(reply), server_round):
                stack.rows[-1] -= flat_global
            else:
                rejections.append((position, stack.rejections[-1][1]))
        accepted = stack.accepted
        metrics: dict[str, int | float] = {
            "accepted_clients": len(accepted),
            "rejected_clients": len(rejections),
            "skipped_step": 0,
        }
        if not accepted:
            log(WARNING, "round %s: no reply accepted; the global model is unchanged", server_round)
            return WeightsResult(None, accepted, rejections, metrics)
        x = torch.from_numpy(flat_global).to(self.device)
        rows = torch.from_numpy(stack.rows).to(self.device)
        if self.pre_aggregation is not None:
            rows = self.pre_aggregation(rows, server_round, owned=True)  # this call's own stack
            metrics["pre_aggregated_rows"] = int(rows.shape[0])
        inputs = self.rule.plugin_inputs(like, server_round)  # e.g. FLTrust's server update
        step = self.rule(rows, self.state, server_round, **inputs)
        update = step.update if step.scale == 1.0 else step.update * step.scale
        new = x + update.to(x.dtype)
        if all_finite(new) and (step.state is None or all_finite(step.state)):
            self.state = step.state
        else:
            log(WARNING, "round %s: the step would make the model non-finite; not applied", server_round)
            new, metrics["skipped_step"] = x, 1
        metrics.update(step.metrics)
        return WeightsResult(_unflatten(new.cpu().numpy(), like, floating), accepted, rejections, metrics)


def _unflatten(flat: np.ndarray, like: list[np.ndarray], floating: list[int]) -> list[np.ndarray]:
    """The global model's arrays with the floating ones taken from ``flat`` (in their own dtypes)."""
    out = [a.copy() for a in like]
    start = 0
    for i in floating:
        size = like[i].size
        out[i] = flat[start : start + size].reshape(like[i].shape).astype(like[i].dtype)
        start += size
    return out


def _pre_aggregation(rule: Rule, value: str | Sequence[PreAggregator] | None) -> PreAggregation | None:
    if value is None or (isinstance(value, str) and not value.strip(" ,")):
        return None
    if isinstance(value, str):
        return PreAggregation.parse(
            value, byzantine_fraction=getattr(rule, "byzantine_fraction", None),
            clients_per_round=int(getattr(rule, "clients_per_round", 0) or 0),
        )
    if isinstance(value, PreAggregator):
        value = [value]
    return PreAggregation(list(value))


def pop_aggregator(rule_class: type[Rule], kwargs: dict[str, object]) -> WeightsAggregator:
    """Build a :class:`WeightsAggregator` from the rule's keyword arguments, ``device`` and
    ``pre_aggregation``, removing them from ``kwargs`` (what is left goes to Flower's ``FedAvg``).

    Examples
    --------
    >>> from fedrobust.aggregators.rules import TrimmedMeanRule
    >>> kwargs = {"beta": 0.1, "fraction_fit": 0.5}
    >>> pop_aggregator(TrimmedMeanRule, kwargs).rule, kwargs
    (TrimmedMeanRule(beta=0.1), {'fraction_fit': 0.5})

    Where Flower has the same rule its argument names are taken too (``Rule.flower_names``), so
    that a Flower ``Krum(num_malicious_nodes=2, num_nodes_to_select=3)`` keeps its arguments:

    >>> from fedrobust.aggregators.rules import KrumRule
    >>> pop_aggregator(KrumRule, {"num_malicious_nodes": 2, "num_nodes_to_select": 3}).rule
    KrumRule(krum_f=2, krum_m=3, byzantine_fraction=0.2, clients_per_round=0)
    """
    params = {name: kwargs.pop(name) for name in rule_parameters(rule_class) if name in kwargs}
    for flower_name, (name, convert) in rule_class.flower_names.items():
        if flower_name in kwargs:
            if name in params:
                raise TypeError(f"{rule_class.name}: give {name} or Flower's {flower_name}, not both")
            params[name] = convert(kwargs.pop(flower_name))
    rule = rule_class(**params)
    rule.check_plugin()
    return WeightsAggregator(rule, device=kwargs.pop("device", "cpu"), pre_aggregation=kwargs.pop("pre_aggregation", None))
