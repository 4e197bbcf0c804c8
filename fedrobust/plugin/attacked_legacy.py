""":class:`~fedrobust.plugin.attacked.Attacked` for the legacy API (``flwr.server.strategy.Strategy``).

The Byzantine clients' ``FitRes`` are replaced by new ones with the crafted parameters (same array
shapes and dtypes), the same status, ``num_examples`` and metrics, before the wrapped strategy's
``aggregate_fit``. Client ids (``ClientProxy.cid``) are the node ids of the Byzantine set.

Examples
--------
>>> from flwr.server.strategy import Krum
>>> strategy = Attacked(Krum(num_malicious_clients=2), attack="ipm", byzantine=[0, 1])
>>> type(strategy).__name__, strategy.num_malicious_clients
('LegacyAttacked', 2)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from flwr.common import (
    Code,
    EvaluateIns,
    EvaluateRes,
    FitIns,
    FitRes,
    Parameters,
    Scalar,
    Status,
)
from flwr.server.client_manager import ClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import Strategy

from ..core.wire import ndarrays_to_parameters, parameters_to_ndarrays
from .attacked import Attacked, Reply, SentModel, deep_copy, partition_of

__all__ = ["LegacyAttacked"]


class LegacyAttacked(Attacked, Strategy):
    """A legacy Flower strategy under an omniscient attack (build it with ``Attacked(strategy, ...)``)."""

    def initialize_parameters(self, client_manager: ClientManager) -> Parameters | None:
        return self.strategy.initialize_parameters(client_manager)

    def configure_fit(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, FitIns]]:
        """The wrapped strategy's instructions; remembers the arrays they send (w_t) and to whom."""
        self._draw_byzantine(lambda: list(client_manager.all()))
        instructions = list(self.strategy.configure_fit(server_round, parameters, client_manager))
        sent = instructions[0][1].parameters if instructions else parameters
        self._sent = SentModel(server_round, parameters_to_ndarrays(sent), frozenset(p.cid for p, _ in instructions))
        return instructions

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        """The wrapped strategy's aggregate of the replies, the Byzantine ones crafted."""
        results = list(results)
        replies = [_reply(proxy, res) for proxy, res in results]
        crafted, record = self._craft_round(server_round, replies, self._preview(server_round, results))
        for position, arrays in crafted.items():
            proxy, res = results[position]
            results[position] = (proxy, FitRes(res.status, ndarrays_to_parameters(arrays), res.num_examples, res.metrics))
        parameters, metrics = self.strategy.aggregate_fit(server_round, results, failures)
        metrics = dict(metrics or {})
        metrics.update({
            "byzantine-replies": record["byzantine-replies"],
            "attack-distance": record["attack-distance"],
            "byzantine-nodes": ",".join(str(n) for n in record["nodes"]),
        })
        if record["partitions"]:
            metrics["byzantine-partitions"] = ",".join(str(p) for p in record["partitions"])
        return parameters, metrics

    def configure_evaluate(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, EvaluateIns]]:
        return self.strategy.configure_evaluate(server_round, parameters, client_manager)

    def aggregate_evaluate(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, EvaluateRes]],
        failures: list[tuple[ClientProxy, EvaluateRes] | BaseException],
    ) -> tuple[float | None, dict[str, Scalar]]:
        return self.strategy.aggregate_evaluate(server_round, results, failures)

    def evaluate(self, server_round: int, parameters: Parameters) -> tuple[float, dict[str, Scalar]] | None:
        return self.strategy.evaluate(server_round, parameters)

    def _preview(self, server_round: int, results: list[tuple[ClientProxy, FitRes]]) -> Any:
        """Aggregate synthetic replies (one per row, equal weights) with a deep copy of the wrapped strategy."""
        templates = [(proxy, res) for proxy, res in results if res.status.code == Code.OK]

        def preview(arrays: list[list[np.ndarray]], weight: float) -> list[np.ndarray] | None:
            synthetic = []
            for i, a in enumerate(arrays):
                proxy, res = templates[i % len(templates)]
                synthetic.append((proxy, FitRes(Status(Code.OK, ""), ndarrays_to_parameters(a),
                                                max(1, round(weight)), dict(res.metrics))))
            parameters, _ = deep_copy(self.strategy).aggregate_fit(server_round, synthetic, [])
            return None if parameters is None else parameters_to_ndarrays(parameters)

        return preview


def _reply(proxy: ClientProxy, res: FitRes) -> Reply:
    arrays = None
    if res.status.code == Code.OK:
        try:
            arrays = parameters_to_ndarrays(res.parameters)
        except Exception:  # noqa: BLE001 - a malformed payload is left to the wrapped strategy
            arrays = None
    weight = res.num_examples if isinstance(res.num_examples, int) and not isinstance(res.num_examples, bool) else None
    return Reply(node=str(getattr(proxy, "cid", "")), partition=partition_of(res.metrics), arrays=arrays,
                 weight=weight)
