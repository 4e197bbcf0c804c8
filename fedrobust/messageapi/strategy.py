"""Every fedrobust strategy as a Message-API strategy: :class:`MessageStrategy`.

A :class:`MessageStrategy` is a :class:`flwr.serverapp.strategy.Strategy` around one legacy
:class:`~fedrobust.strategies.VectorStrategy`, its *core*. It only translates: the core samples the
round's partition ids, builds every instruction, validates and stacks the replies, steps, evaluates
and records the round exactly as it does under the legacy API, and this class converts its
``FitIns`` / ``FitRes`` to and from Messages (:mod:`fedrobust.messageapi.records`). So the two APIs
share one implementation of the math, the sampling, the validation and the records, and give the
same model for the same run (docs/message-api.md).

- Partition ids: a node unknown to the strategy is sent one ``query`` message, and its reply's
  ``partition-id`` is remembered (nodes that do not answer are asked again the next round). The
  core then sees the nodes as client proxies with those properties, and samples by partition id,
  never by Flower's random node ids.
- Failures: an error reply, a reply without the protocol's records, and a reply that does not
  arrive before the timeout each count as a failed client (``failed_clients``); a reply with bad
  values is rejected by the core's validator (``rejected_clients``, with its reason).
- Evaluation is central: :meth:`start` evaluates the core's model before round 1 and after each
  round (Flower's ``evaluate_fn``), which also closes the round's record; there is no federated
  evaluation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from logging import INFO, WARNING
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord
from flwr.common import (
    Code,
    DisconnectRes,
    EvaluateIns,
    EvaluateRes,
    FitIns,
    FitRes,
    GetParametersIns,
    GetParametersRes,
    GetPropertiesIns,
    GetPropertiesRes,
    ReconnectIns,
    Scalar,
    Status,
)
from flwr.common.constant import PARTITION_ID_KEY
from flwr.common.logger import log
from flwr.server.client_manager import SimpleClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Result, Strategy

from ..core.ndarrays import flatten, to_ndarrays
from ..strategies import VectorStrategy
from ..core.validation import check_arrays
from .records import MalformedContent, content_to_fitres, content_to_properties, fitins_to_content, query_content

__all__ = ["MessageStrategy", "NodeProxy", "ClientFailure"]


class ClientFailure(RuntimeError):
    """A sampled node that did not deliver a usable reply (counted in ``failed_clients``)."""


class NodeProxy(ClientProxy):
    """The core's view of a node: its id as ``cid`` and the properties its ``query`` reply gave.

    The core only asks proxies for their properties; messages are sent by :class:`MessageStrategy`.
    """

    def __init__(self, node_id: int, properties: dict[str, Scalar]) -> None:
        super().__init__(cid=str(node_id))
        self.node_id = int(node_id)
        self.properties = dict(properties)

    def get_properties(self, ins: GetPropertiesIns, timeout: float | None, group_id: int | None) -> GetPropertiesRes:
        """The properties the node reported to the ``query`` message."""
        return GetPropertiesRes(Status(Code.OK, ""), dict(self.properties))

    def get_parameters(self, ins: GetParametersIns, timeout: float | None, group_id: int | None) -> GetParametersRes:
        raise NotImplementedError("the server holds the model; nodes are not asked for parameters")

    def fit(self, ins: FitIns, timeout: float | None, group_id: int | None) -> FitRes:
        raise NotImplementedError("MessageStrategy sends train messages through the grid")

    def evaluate(self, ins: EvaluateIns, timeout: float | None, group_id: int | None) -> EvaluateRes:
        raise NotImplementedError("fedrobust evaluates centrally")

    def reconnect(self, ins: ReconnectIns, timeout: float | None, group_id: int | None) -> DisconnectRes:
        return DisconnectRes(reason="")


class _NodeManager(SimpleClientManager):
    """The core's client manager: the nodes that reported a partition. :class:`MessageStrategy`
    registers them and waits for the grid's nodes itself, so ``wait_for`` only reports."""

    def wait_for(self, num_clients: int, timeout: int = 86400) -> bool:
        return self.num_available() >= num_clients


class MessageStrategy(Strategy):
    """A Message-API strategy whose rounds are those of a legacy fedrobust strategy (its core).

    Parameters
    ----------
    core : VectorStrategy
        The strategy that does the work, e.g. ``fedrobust.run.app.make_strategy(cfg)`` (which adds the
        test-split evaluation and the results file) or ``STRATEGIES["bgmd"](cfg, x0, shapes)``.
        It must not be shared with another run.

    Examples
    --------
    In a ServerApp's ``main(grid, context)``::

        strategy = MessageStrategy(fedrobust.run.app.make_strategy(cfg))
        result = strategy.start(grid=grid)  # from the core's x0, for its rounds
        results = strategy.results()        # fedrobust's results document
    """

    def __init__(self, core: VectorStrategy) -> None:
        if not isinstance(core, VectorStrategy):
            raise TypeError(f"core must be a fedrobust VectorStrategy, got {type(core).__name__}")
        self.core = core
        self.timeout: float | None = None  # seconds to wait for replies; set by start() (None: no limit)
        self._manager = _NodeManager()
        self._proxies: dict[int, NodeProxy] = {}  # node id -> proxy, for nodes that reported a partition
        self._sent: dict[int, set[int]] = {}  # round -> node ids sent a train message

    def __repr__(self) -> str:
        return f"MessageStrategy({self.core!r})"

    # ------------------------------------------------------------------------------ the core's
    @property
    def name(self) -> str:
        """The core's ``strategy`` name."""
        return self.core.name

    def arrays(self) -> ArrayRecord:
        """The current global model (the core's ``x``) as an ArrayRecord of the model's arrays."""
        return ArrayRecord(to_ndarrays(self.core.x, self.core.shapes))

    def results(self) -> dict[str, Any]:
        """The results document of the rounds so far (the core's, as under the legacy API)."""
        return self.core.results()

    def summary(self) -> None:
        """Log the strategy and its main settings."""
        c = self.core.cfg
        log(INFO, "\t├──> fedrobust strategy %r (core %s, client protocol %r)", self.name, type(self.core).__name__,
            self.core.protocol)
        log(INFO, "\t├──> %s of %s partitions per round, seed %s", c.clients_per_round, c.num_clients, c.seed)
        log(INFO, "\t└──> model of %s parameters on %s", self.core.x.numel(), self.core.device)

    # ------------------------------------------------------------------------------- training
    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """The core's instructions for the partitions it samples, as ``train`` messages.

        ``arrays`` is not read: the core holds the global model (:meth:`aggregate_train` returns
        it, so the two agree). ``config`` entries are added to each message's config where the
        core does not set them.
        """
        self._learn_partitions(grid, server_round)
        pairs = self.core.configure_fit(server_round, None, self._manager)  # type: ignore[arg-type]
        contents: dict[int, Any] = {}  # one content per distinct instruction (most rounds share one)
        messages = []
        for proxy, ins in pairs:
            if id(ins) not in contents:
                contents[id(ins)] = fitins_to_content(ins, extra_config=dict(config or {}))
            node = int(proxy.cid)
            messages.append(Message(contents[id(ins)], node, MessageType.TRAIN, group_id=str(server_round)))
        self._sent[server_round] = {m.metadata.dst_node_id for m in messages}
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Hand the replies to the core as legacy results and failures; return its new model.

        The returned metrics are the core's: ``accepted_clients``, ``rejected_clients``,
        ``failed_clients`` and ``bytes_up``.
        """
        expected = self._sent.pop(server_round, set())
        results: list[tuple[ClientProxy, FitRes]] = []
        failures: list[tuple[ClientProxy, FitRes] | BaseException] = []
        seen: set[int] = set()
        for reply in replies:
            node = reply.metadata.src_node_id
            if node not in expected or node in seen:
                log(WARNING, "round %s: ignored a reply from node %s (not sampled, or a second reply)", server_round, node)
                continue
            seen.add(node)
            if reply.has_error():
                failures.append(ClientFailure(f"node {node}: error reply {reply.error.code}: {reply.error.reason}"))
                continue
            try:
                res = content_to_fitres(reply.content)
            except MalformedContent as err:
                failures.append(ClientFailure(f"node {node}: {err}"))
                continue
            results.append((self._proxies[node], res))
        failures.extend(ClientFailure(f"node {n}: no reply before the timeout") for n in sorted(expected - seen))
        _, metrics = self.core.aggregate_fit(server_round, results, failures)
        return self.arrays(), MetricRecord({k: v for k, v in metrics.items() if isinstance(v, (int, float))})

    # ----------------------------------------------------------------------------- evaluation
    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """No federated evaluation: the model is evaluated centrally (see :meth:`start`)."""
        return []

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        """Nothing to aggregate (no federated evaluation)."""
        return None

    def evaluate(self, server_round: int, arrays: ArrayRecord | None = None) -> MetricRecord | None:
        """The core's central evaluation of its model (``loss``, ``accuracy``); closes the round's record.

        Round 0 evaluates the initial model. ``arrays`` is not read (the core holds the model).
        """
        res = self.core.evaluate(server_round, None)  # type: ignore[arg-type]
        if res is None:
            return None
        loss, metrics = res
        return MetricRecord({"loss": float(loss), **{k: float(v) for k, v in metrics.items()}})

    # ------------------------------------------------------------------------------------ run
    def start(
        self,
        grid: Grid,
        initial_arrays: ArrayRecord | None = None,
        num_rounds: int | None = None,
        timeout: float | None = 3600,
        train_config: ConfigRecord | None = None,
        evaluate_config: ConfigRecord | None = None,
        evaluate_fn: Callable[[int, ArrayRecord], MetricRecord | None] | None = None,
    ) -> Result:
        """Run the rounds (Flower's :meth:`Strategy.start`, with fedrobust's central evaluation).

        Parameters
        ----------
        grid : Grid
            Where the nodes are.
        initial_arrays : ArrayRecord, optional
            The model to start from (default: the core's ``x0``, :meth:`arrays`); it must have the
            model's arrays (count, shapes, float32).
        num_rounds : int, optional
            Rounds to run (default: the core's rounds left, ``rounds`` unless it resumed a checkpoint).
        timeout : float or None
            Seconds to wait for the replies of a round (and of the ``query`` messages); a sampled node
            that has not replied by then counts as failed. None waits as long as it takes.
        train_config : ConfigRecord, optional
            Extra entries for every ``train`` message's config (the core's own keys take precedence).
        evaluate_config : ConfigRecord, optional
            Unused (no federated evaluation); accepted for Flower's signature.
        evaluate_fn : callable, optional
            An additional central evaluation ``(round, arrays) -> MetricRecord``; its metrics are
            merged into the core's ``loss`` and ``accuracy``.

        Returns
        -------
        flwr.serverapp.strategy.Result
            The final model, each round's core metrics and central evaluations. fedrobust's own
            results document is :meth:`results`.
        """
        if initial_arrays is None:
            initial_arrays = self.arrays()
        else:
            self._load(initial_arrays)
        if num_rounds is None:
            num_rounds = self.core.rounds_left
        if isinstance(num_rounds, bool) or not isinstance(num_rounds, int) or num_rounds < 0:
            raise ValueError(f"num_rounds must be an int >= 0, got {num_rounds!r}")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0):
            raise ValueError(f"timeout must be a number of seconds > 0, or None, got {timeout!r}")
        self.timeout = None if timeout is None else float(timeout)

        def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
            metrics = self.evaluate(server_round)
            if evaluate_fn is not None:
                extra = evaluate_fn(server_round, arrays)
                if extra is not None:
                    metrics = MetricRecord({**(metrics or {}), **extra})
            return metrics

        return super().start(
            grid, initial_arrays, num_rounds=num_rounds, timeout=self.timeout,  # type: ignore[arg-type]  # None: no limit
            train_config=train_config, evaluate_config=evaluate_config, evaluate_fn=evaluate,
        )

    # ------------------------------------------------------------------------------- helpers
    def _load(self, arrays: ArrayRecord) -> None:
        if not isinstance(arrays, ArrayRecord):
            raise TypeError(f"initial_arrays must be an ArrayRecord, got {type(arrays).__name__}")
        ndarrays = arrays.to_numpy_ndarrays()
        reason = check_arrays(ndarrays, self.core.shapes)
        if reason is not None:
            raise ValueError(f"initial_arrays do not fit the model: {reason}")
        self.core.x.copy_(flatten(ndarrays).to(self.core.device))

    def _learn_partitions(self, grid: Grid, server_round: int) -> None:
        """Ask the nodes not known yet for their partition id (one ``query`` each, sent together)
        and keep the core's client manager in step with the grid's nodes."""
        nodes = [int(n) for n in grid.get_node_ids()]
        if not self._proxies and len(nodes) < self.core.cfg.num_clients:
            nodes = self._wait_for_nodes(grid)
        for gone in set(self._proxies) - set(nodes):
            self._manager.unregister(self._proxies.pop(gone))
        unknown = [n for n in nodes if n not in self._proxies]
        if not unknown:
            return
        queries = [Message(query_content(), n, MessageType.QUERY, group_id=str(server_round)) for n in unknown]
        for reply in grid.send_and_receive(queries, timeout=self.timeout):
            node = reply.metadata.src_node_id
            try:
                if node not in unknown or node in self._proxies:
                    raise ClientFailure("not asked, or a second reply")
                if reply.has_error():
                    raise ClientFailure(f"error reply {reply.error.code}: {reply.error.reason}")
                properties = content_to_properties(reply.content)
                partition = properties.get(PARTITION_ID_KEY)
                if isinstance(partition, bool) or not isinstance(partition, int):
                    raise ClientFailure(f"no integer {PARTITION_ID_KEY!r} in its properties {properties}")
            except (ClientFailure, MalformedContent) as err:
                log(WARNING, "round %s: node %s did not report its partition (asked again next round): %s",
                    server_round, node, err)
                continue
            self._proxies[node] = NodeProxy(node, properties)
            self._manager.register(self._proxies[node])

    def _wait_for_nodes(self, grid: Grid) -> list[int]:
        """Before the first round, wait until ``num-clients`` nodes are connected (Flower's engine
        may start the ServerApp before its nodes), up to ``round-timeout`` seconds (30 s when 0),
        as the legacy server does; then go on with the nodes there are."""
        wanted, limit = self.core.cfg.num_clients, self.core.cfg.round_timeout or 30
        deadline = time.monotonic() + limit
        while len(nodes := [int(n) for n in grid.get_node_ids()]) < wanted and time.monotonic() < deadline:
            log(INFO, "waiting for nodes to connect: %d of %d", len(nodes), wanted)
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        return nodes
