"""Robust drop-in replacements of Flower's Message-API ``flwr.serverapp.strategy.FedAvg``.

Each class subclasses Flower's ``FedAvg`` and takes all of its arguments (``fraction_train``,
``min_train_nodes``, ``weighted_by_key``, ``arrayrecord_key``, ``train_metrics_aggr_fn``, ...)
plus its rule's parameters (:mod:`fedrobust.aggregators.rules`), ``device`` and ``pre_aggregation``
(:mod:`fedrobust.aggregators.preaggregation`, e.g. ``"bucketing:s=2,nnm"``); ``strategy.start(grid=...,
initial_arrays=..., num_rounds=...)`` runs it as usual. Only the aggregation changes:
``aggregate_train`` validates every reply against the ``ArrayRecord`` the round sent and moves it
by the rule of the accepted clients' deltas (:class:`~fedrobust.plugin.weights.WeightsAggregator`).

Flower's ``FedAvg`` raises ``InconsistentMessageReplies`` when one reply lacks a record or a key;
here such a reply is rejected and counted instead. A reply is accepted when its content holds
exactly one ``ArrayRecord`` with the global model's keys (same shapes and dtypes, finite values
of bounded magnitude) and exactly one ``MetricRecord`` whose ``weighted_by_key`` entry is a
finite number >= 0. The returned ``MetricRecord`` holds ``accepted_clients``,
``rejected_clients``, ``failed_clients``, ``skipped_step`` and the rule's metrics, next to what
``train_metrics_aggr_fn`` returns for the accepted replies. A round with no accepted reply
returns no arrays: ``start`` keeps the model.

Examples
--------
>>> strategy = FedKrum(fraction_train=0.5, min_train_nodes=4, krum_f=1)
>>> strategy
FedKrum(krum_f=1, krum_m=1, byzantine_fraction=0.2, clients_per_round=0)
>>> strategy.fraction_train, strategy.min_train_nodes, strategy.name
(0.5, 4, 'krum')
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from logging import INFO, WARNING
from typing import Any, ClassVar

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.common.logger import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from ..aggregators.rules import Rule
from .table import PluginTable
from .weights import pop_aggregator

__all__ = ["PLUGINS", "RobustFedAvg", "FedGMD", "FedBGMD", "FedCMD", "FedTrimmedMean", "FedKrum", "FedNormThreshold", "FedFLTrust"]  # noqa: F822 - made below


class RobustFedAvg(FedAvg):
    """Flower's Message-API ``FedAvg`` with a robust rule in place of the weighted mean (see the
    module docstring).

    Subclasses set ``rule_class``; ``name`` is the rule's strategy name.

    Parameters
    ----------
    *args, **kwargs
        Flower ``FedAvg``'s arguments, the rule's parameters (keyword only) and ``device`` (where
        the deltas are aggregated, default ``"cpu"``).

    Attributes
    ----------
    aggregator : fedrobust.plugin.weights.WeightsAggregator
        The rule and its server state.
    global_arrays : ArrayRecord or None
        The global model sent in the current round.
    round_rejections : list of (int, str)
        (node id, reason) of the replies rejected in the last aggregated round.
    """

    rule_class: ClassVar[type[Rule]] = Rule
    name: ClassVar[str] = ""
    """The strategy name (``gmd``, ``bgmd``, ...), as in :data:`fedrobust.strategies.STRATEGIES`."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.name = cls.rule_class.name

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.aggregator = pop_aggregator(self.rule_class, kwargs)
        super().__init__(*args, **kwargs)
        self.global_arrays: ArrayRecord | None = None
        self.round_rejections: list[tuple[int, str]] = []

    def __repr__(self) -> str:
        items = dict(self.aggregator.rule.parameters())
        if self.aggregator.pre_aggregation is not None:
            items["pre_aggregation"] = self.aggregator.pre_aggregation.spec()
        params = ", ".join(f"{k}={v!r}" for k, v in items.items())
        return f"{type(self).__name__}({params})"

    def summary(self) -> None:
        """Log the rule and its parameters, then ``FedAvg``'s summary."""
        log(INFO, "\t├──> fedrobust rule: %r", self.aggregator.rule)
        super().summary()

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Remember the global model of the round, then sample and configure as ``FedAvg`` does."""
        self.global_arrays = arrays
        return super().configure_train(server_round, arrays, config, grid)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Validate the replies and apply the rule to the accepted clients' deltas; never raises for
        what clients send."""
        if self.global_arrays is None:
            raise RuntimeError(
                f"{type(self).__name__}.aggregate_train needs the round's global model: call configure_train first"
            )
        replies = list(replies)
        valid = [m for m in replies if not m.has_error()]
        for m in replies:
            if m.has_error():
                log(WARNING, "round %s: node %s failed: %s", server_round, m.metadata.src_node_id, m.error.reason)
        if not valid:
            return None, None
        keys = list(self.global_arrays.keys())
        global_arrays = [self.global_arrays[k].numpy() for k in keys]
        out = self.aggregator.aggregate(
            server_round, global_arrays, [self._arrays_of(m.content, keys) for m in valid],
            senders=[f"the reply of node {m.metadata.src_node_id}" for m in valid],
        )
        self.round_rejections = [(valid[i].metadata.src_node_id, reason) for i, reason in out.rejections]
        metrics = MetricRecord()
        if out.accepted:
            try:
                metrics = self.train_metrics_aggr_fn([valid[i].content for i in out.accepted], self.weighted_by_key)
            except Exception as err:  # noqa: BLE001 - client metrics are untrusted input
                log(WARNING, "round %s: train_metrics_aggr_fn failed on the replies: %r", server_round, err)
        for key, value in out.metrics.items():
            metrics[key] = value
        metrics["failed_clients"] = len(replies) - len(valid)
        if out.arrays is None:
            return None, metrics
        return ArrayRecord({k: Array(a) for k, a in zip(keys, out.arrays)}), metrics

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        """``FedAvg``'s weighted metrics over the replies with a valid ``MetricRecord`` (others are
        dropped, not raised: a client's report is untrusted input)."""
        replies = list(replies)
        valid = [m for m in replies if not m.has_error() and self._metrics_reason(m.content) is None]
        if len(valid) < len(replies):
            log(WARNING, "round %s: %s evaluate replies dropped", server_round, len(replies) - len(valid))
        if not valid:
            return None
        try:
            return self.evaluate_metrics_aggr_fn([m.content for m in valid], self.weighted_by_key)
        except Exception as err:  # noqa: BLE001 - client metrics are untrusted input
            log(WARNING, "round %s: evaluate_metrics_aggr_fn failed on the replies: %r", server_round, err)
            return None

    # ------------------------------------------------------------------------------ helpers
    def _metrics_reason(self, content: RecordDict) -> str | None:
        """Why a reply's metrics cannot weigh it, or None."""
        records = list(content.metric_records.values())
        if len(records) != 1:
            return f"expected exactly one MetricRecord, got {len(records)}"
        weight = records[0].get(self.weighted_by_key)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            return f"MetricRecord entry {self.weighted_by_key!r} is not a number: {weight!r}"
        if not math.isfinite(weight) or weight < 0:
            return f"MetricRecord entry {self.weighted_by_key!r} is not a finite number >= 0: {weight!r}"
        return None

    def _arrays_of(self, content: RecordDict, keys: list[str]) -> list[np.ndarray] | str:
        """A reply's arrays in the order of the global model's ``keys``, or why it has none to aggregate."""
        records = list(content.array_records.values())
        if len(records) != 1:
            return f"expected exactly one ArrayRecord, got {len(records)}"
        if set(records[0].keys()) != set(keys):
            missing, extra = sorted(set(keys) - set(records[0])), sorted(set(records[0]) - set(keys))
            return f"the ArrayRecord's keys differ from the model's (missing {missing[:5]}, unexpected {extra[:5]})"
        reason = self._metrics_reason(content)
        if reason is not None:
            return reason
        try:
            return [records[0][k].numpy() for k in keys]
        except Exception as err:  # noqa: BLE001 - a malformed payload is a bad reply, not a server crash
            return f"the arrays do not deserialise: {type(err).__name__}: {err}"


PLUGINS = PluginTable(RobustFedAvg, __name__)
"""Strategy name → plugin class (``FedGMD``, ``FedBGMD``, ...), one per rule of
:data:`fedrobust.aggregators.rules.RULES`."""

globals().update(PLUGINS.by_class_names())
__getattr__ = PLUGINS.module_getattr  # the class of a rule registered after this import
