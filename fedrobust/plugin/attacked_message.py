""":class:`~fedrobust.plugin.attacked.Attacked` for the Message API (``flwr.serverapp.strategy.Strategy``).

A Byzantine node's reply becomes a new ``Message`` with the same metadata and the same records,
its ``ArrayRecord`` replaced (under the same record key, with the same array keys, shapes and
dtypes) by the crafted arrays and its ``MetricRecord`` kept, before the wrapped strategy's
``aggregate_train``. ``start`` is the base class's: it drives the wrapper, which drives the
wrapped strategy's ``configure_*`` / ``aggregate_*``.

Examples
--------
>>> from flwr.serverapp.strategy import Krum
>>> strategy = Attacked(Krum(num_malicious_nodes=2), attack="ipm", byzantine=0.2)
>>> type(strategy).__name__, strategy.num_malicious_nodes
('MessageAttacked', 2)
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from logging import INFO
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.common.logger import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from .attacked import Attacked, Reply, SentModel, deep_copy, partition_of

__all__ = ["MessageAttacked"]

_SINT64_MAX = 2**63 - 1


class MessageAttacked(Attacked, Strategy):
    """A Message-API Flower strategy under an omniscient attack (build it with ``Attacked(strategy, ...)``)."""

    def summary(self) -> None:
        """Log the attack, then the wrapped strategy's summary."""
        log(INFO, "\t├──> Attacked: %r", self)
        self.strategy.summary()

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """The wrapped strategy's messages; remembers the arrays they send (w_t) and to whom."""
        self._draw_byzantine(lambda: list(grid.get_node_ids()))
        messages = list(self.strategy.configure_train(server_round, arrays, config, grid))
        sent = arrays
        if messages and messages[0].has_content() and len(messages[0].content.array_records) == 1:
            sent = next(iter(messages[0].content.array_records.values()))
        keys = tuple(sent.keys())
        self._sent = SentModel(server_round, [sent[k].numpy() for k in keys],
                               frozenset(m.metadata.dst_node_id for m in messages), keys)
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """The wrapped strategy's aggregate of the replies, the Byzantine ones crafted."""
        replies = list(replies)
        keys = self._sent.keys if self._sent is not None else ()
        read = [self._reply(m, keys) for m in replies]
        crafted, record = self._craft_round(server_round, [r for r, _ in read], self._preview(server_round, replies, keys))
        for position, arrays in crafted.items():
            replies[position] = _with_arrays(replies[position], read[position][1], dict(zip(keys, arrays)))
        arrays, metrics = self.strategy.aggregate_train(server_round, replies)
        metrics = MetricRecord() if metrics is None else metrics
        metrics["byzantine-replies"] = int(record["byzantine-replies"])
        metrics["attack-distance"] = float(record["attack-distance"])
        nodes = [int(n) for n in record["nodes"]]
        if all(0 <= n <= _SINT64_MAX for n in nodes):
            metrics["byzantine-nodes"] = nodes
        if record["partitions"]:
            metrics["byzantine-partitions"] = [int(p) for p in record["partitions"]]
        return arrays, metrics

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        return self.strategy.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        return self.strategy.aggregate_evaluate(server_round, replies)

    # ------------------------------------------------------------------------------ helpers
    def _weight_key(self) -> str:
        return str(getattr(self.strategy, "weighted_by_key", "num-examples"))

    def _reply(self, message: Message, keys: tuple[str, ...]) -> tuple[Reply, str | None]:
        """The reply as the adversary reads it, and the name of its ArrayRecord (None without one)."""
        node = message.metadata.src_node_id
        if message.has_error() or not message.has_content():
            return Reply(node, None, None), None
        content = message.content
        partition, weight = None, None
        for metrics in content.metric_records.values():
            partition = partition if partition is not None else partition_of(metrics)
            value = metrics.get(self._weight_key())
            if weight is None and isinstance(value, (int, float)) and not isinstance(value, bool):
                weight = float(value)
        records = list(content.array_records.items())
        if len(records) != 1 or set(records[0][1].keys()) != set(keys):
            return Reply(node, partition, None, weight), None
        name, record = records[0]
        try:
            arrays = [record[k].numpy() for k in keys]
        except Exception:  # noqa: BLE001 - a malformed payload is left to the wrapped strategy
            arrays = None
        return Reply(node, partition, arrays, weight), name

    def _preview(self, server_round: int, replies: list[Message], keys: tuple[str, ...]) -> Any:
        """Aggregate synthetic replies (one per row, equal weights) with a deep copy of the wrapped strategy."""
        templates = [(m, name) for m in replies for _, name in [self._reply(m, keys)] if name is not None]
        weight_key = self._weight_key()

        def preview(arrays: list[list[np.ndarray]], weight: float) -> list[np.ndarray] | None:
            synthetic = []
            for i, a in enumerate(arrays):
                message, name = templates[i % len(templates)]
                reply = _with_arrays(message, name, dict(zip(keys, a)))
                for metrics in reply.content.metric_records.values():
                    if weight_key in metrics:
                        metrics[weight_key] = type(metrics[weight_key])(weight)
                synthetic.append(reply)
            out, _ = deep_copy(self.strategy).aggregate_train(server_round, synthetic)
            return None if out is None else [out[k].numpy() for k in keys]

        return preview


def _with_arrays(message: Message, name: str, arrays: dict[str, np.ndarray]) -> Message:
    """A copy of ``message`` (same metadata, same records) whose ArrayRecord ``name`` holds ``arrays``.

    The array keys keep the reply's order; the MetricRecords are copies (the original is not changed).
    """
    content = message.content
    records: dict[str, Any] = {}
    for key, record in content.items():
        if key == name:
            records[key] = ArrayRecord({k: Array(np.ascontiguousarray(arrays[k])) for k in record.keys()})
        elif isinstance(record, MetricRecord):
            records[key] = MetricRecord(dict(record))
        else:
            records[key] = record
    return Message(metadata=copy.copy(message.metadata), content=RecordDict(records))  # type: ignore[call-overload]
