"""Robust drop-in replacements of Flower's legacy ``flwr.server.strategy.FedAvg``.

Each class subclasses Flower's ``FedAvg`` and takes all of its keyword arguments
(``fraction_fit``, ``min_fit_clients``, ``initial_parameters``, ``evaluate_fn``,
``on_fit_config_fn``, ``fit_metrics_aggregation_fn``, ...) plus its rule's parameters
(:mod:`fedrobust.aggregators.rules`) and ``device``. Only the aggregation changes: ``aggregate_fit``
validates every ``FitRes`` against the global model the round sent and moves that model by the
rule of the accepted clients' deltas (:class:`~fedrobust.plugin.weights.WeightsAggregator`).

The returned fit metrics hold ``accepted_clients``, ``rejected_clients``, ``failed_clients``,
``skipped_step`` and the rule's metrics, next to what ``fit_metrics_aggregation_fn`` returns for
the accepted replies. A round with no accepted reply returns no parameters: the server keeps its
model.

Examples
--------
>>> from flwr.common import ndarrays_to_parameters
>>> import numpy as np
>>> strategy = FedBGMD(rho=0.5, fraction_fit=0.5, min_fit_clients=3,
...                    initial_parameters=ndarrays_to_parameters([np.zeros(4, np.float32)]))
>>> strategy
FedBGMD(rho=0.5, memory='mean', memory_weights='gm', selection='sample', gm_tol=1e-07, gm_max_iter=200, seed=0)
>>> strategy.fraction_fit, strategy.min_fit_clients
(0.5, 3)
"""

from __future__ import annotations

import math
from logging import WARNING
from typing import Any, ClassVar

import numpy as np
from flwr.common import (
    Code,
    EvaluateRes,
    FitRes,
    Parameters,
    Scalar,
)
from flwr.common.logger import log
from flwr.server.client_manager import ClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import FedAvg

from ..core.wire import ndarrays_to_parameters, parameters_to_ndarrays
from ..aggregators.rules import Rule
from .table import PluginTable
from ..core.validation import num_examples_reason
from .weights import pop_aggregator

__all__ = ["PLUGINS", "RobustFedAvg", "FedGMD", "FedBGMD", "FedCMD", "FedTrimmedMean", "FedKrum", "FedNormThreshold", "FedFLTrust"]  # noqa: F822 - made below


class RobustFedAvg(FedAvg):
    """Flower's ``FedAvg`` with a robust rule in place of the weighted mean (see the module docstring).

    Subclasses set ``rule_class``; ``name`` is the rule's strategy name.

    Parameters
    ----------
    **kwargs
        Flower ``FedAvg``'s keyword arguments, the rule's parameters, ``device`` (where the
        deltas are aggregated, default ``"cpu"``) and ``pre_aggregation`` (steps applied to the
        deltas before the rule; :class:`~fedrobust.plugin.weights.WeightsAggregator`).

    Attributes
    ----------
    aggregator : fedrobust.plugin.weights.WeightsAggregator
        The rule and its server state.
    global_arrays : list of numpy.ndarray or None
        The global model sent in the current round.
    round_rejections : list of (str, str)
        (client id, reason) of the replies rejected in the last aggregated round.
    """

    rule_class: ClassVar[type[Rule]] = Rule
    name: ClassVar[str] = ""
    """The strategy name (``gmd``, ``bgmd``, ...), as in :data:`fedrobust.strategies.STRATEGIES`."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.name = cls.rule_class.name

    def __init__(self, **kwargs: Any) -> None:
        self.aggregator = pop_aggregator(self.rule_class, kwargs)
        super().__init__(**kwargs)
        self.global_arrays: list[np.ndarray] | None = None
        self.round_rejections: list[tuple[str, str]] = []

    def __repr__(self) -> str:
        items = dict(self.aggregator.rule.parameters())
        if self.aggregator.pre_aggregation is not None:
            items["pre_aggregation"] = self.aggregator.pre_aggregation.spec()
        params = ", ".join(f"{k}={v!r}" for k, v in items.items())
        return f"{type(self).__name__}({params})"

    def initialize_parameters(self, client_manager: ClientManager) -> Parameters | None:
        """Flower's initial parameters (``initial_parameters``), remembered as the global model."""
        parameters = super().initialize_parameters(client_manager)
        if parameters is not None:
            self.global_arrays = parameters_to_ndarrays(parameters)
        return parameters

    def configure_fit(self, server_round: int, parameters: Parameters, client_manager: ClientManager):
        """Remember the global model of the round, then sample and configure as ``FedAvg`` does."""
        self.global_arrays = parameters_to_ndarrays(parameters)
        return super().configure_fit(server_round, parameters, client_manager)

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        """Validate the replies and apply the rule to the accepted clients' deltas; never raises for
        what clients send."""
        if not results or (not self.accept_failures and failures):
            return None, {}
        if self.global_arrays is None:
            raise RuntimeError(
                f"{type(self).__name__}.aggregate_fit needs the round's global model: call configure_fit "
                "(or initialize_parameters with initial_parameters) first"
            )
        out = self.aggregator.aggregate(
            server_round, self.global_arrays, [_arrays_of(res) for _, res in results],
            senders=[f"the reply of client {_cid(proxy, i)}" for i, (proxy, _) in enumerate(results)],
        )
        self.round_rejections = [(_cid(results[i][0], i), reason) for i, reason in out.rejections]
        metrics: dict[str, Scalar] = {}
        if self.fit_metrics_aggregation_fn and out.accepted:
            try:
                metrics = dict(self.fit_metrics_aggregation_fn(
                    [(results[i][1].num_examples, results[i][1].metrics) for i in out.accepted]
                ))
            except Exception as err:  # noqa: BLE001 - client metrics are untrusted input
                log(WARNING, "round %s: fit_metrics_aggregation_fn failed on the replies: %r", server_round, err)
        metrics.update(out.metrics)
        metrics["failed_clients"] = len(failures)
        if out.arrays is None:
            return None, metrics
        return ndarrays_to_parameters(out.arrays), metrics

    def aggregate_evaluate(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, EvaluateRes]],
        failures: list[tuple[ClientProxy, EvaluateRes] | BaseException],
    ) -> tuple[float | None, dict[str, Scalar]]:
        """``FedAvg``'s weighted loss over the replies with a finite loss and a valid ``num_examples``
        (others are dropped: a client's report is untrusted input)."""
        valid = [(p, r) for p, r in results if _evaluate_reason(r) is None]
        if len(valid) < len(results):
            log(WARNING, "round %s: %s evaluate replies dropped", server_round, len(results) - len(valid))
        if not valid or sum(r.num_examples for _, r in valid) == 0:
            return None, {}
        try:
            return super().aggregate_evaluate(server_round, valid, failures)
        except Exception as err:  # noqa: BLE001 - client metrics are untrusted input
            log(WARNING, "round %s: evaluate aggregation failed on the replies: %r", server_round, err)
            return None, {}


def _cid(proxy: ClientProxy | None, position: int) -> str:
    return str(getattr(proxy, "cid", position))


def _arrays_of(res: FitRes) -> list[np.ndarray] | str:
    """A reply's arrays, or why it has none to aggregate."""
    if res.status.code != Code.OK:
        return f"status {res.status.code.name}: {res.status.message}"
    reason = num_examples_reason(res.num_examples)
    if reason is not None:
        return reason
    try:
        return parameters_to_ndarrays(res.parameters)
    except Exception as err:  # noqa: BLE001 - a malformed payload is a bad reply, not a server crash
        return f"the arrays do not deserialise: {type(err).__name__}: {err}"


def _evaluate_reason(res: EvaluateRes) -> str | None:
    if res.status.code != Code.OK:
        return f"status {res.status.code.name}"
    if not isinstance(res.loss, (int, float, np.floating)) or not math.isfinite(res.loss):
        return f"loss is not a finite number: {res.loss!r}"
    return num_examples_reason(res.num_examples)


PLUGINS = PluginTable(RobustFedAvg, __name__)
"""Strategy name → plugin class (``FedGMD``, ``FedBGMD``, ...), one per rule of
:data:`fedrobust.aggregators.rules.RULES`."""

globals().update(PLUGINS.by_class_names())
__getattr__ = PLUGINS.module_getattr  # the class of a rule registered after this import
