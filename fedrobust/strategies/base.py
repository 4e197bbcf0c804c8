"""The common server loop of every fedrobust strategy (Flower's legacy ``Strategy`` API).

The global model lives on the server as one flat float32 torch vector ``x`` (on the run's device).
Each round a :class:`VectorStrategy`

1. samples ``clients-per-round`` partition ids with the run seed (never Flower's random node ids:
   each node is asked its ``partition-id`` once, through ``get_properties``);
2. sends them ``x`` as the model's ndarrays plus a config dict (server round, lr, seed, ...);
3. validates every reply with the shared validator :mod:`fedrobust.core.validation` (array count,
   shapes, dtype float32, payloads that decode, finite values of magnitude at most
   :data:`~fedrobust.core.validation.MAGNITUDE_BOUND`, the metrics the strategy needs): bad replies
   are dropped, counted as ``rejected_clients``, logged with their reason and listed in the
   round's ``rejections`` ([partition id, reason] pairs), never raised;
4. stacks the accepted client vectors into one (n, d) float32 tensor and calls :meth:`step`,
   where a subclass applies a pure function of :mod:`fedrobust.aggregators` and moves ``x``;
5. evaluates ``x`` centrally and records a :class:`~fedrobust.core.results.RoundRecord`.

A round's ``round_seconds`` runs from the moment its clients are known to its evaluation; the
time from the strategy's construction to round 1's start (the nodes connecting, Ray's actors
starting) is recorded once, as the results' ``startup_seconds``. Where a round's evaluation runs
beside the next round's clients (the in-process engine), that round's seconds start only when
the previous round's evaluation ended: the rounds' seconds still add up to the time the rounds took.

Reliability rules of the loop (see docs/reliability.md):

- a round where every reply is rejected, or every sampled client failed (raised or timed out),
  leaves the model unchanged and the run continues (``accepted_clients`` is 0);
- the global model never becomes non-finite: a step that would make ``x`` (or another (d,)-sized
  server tensor, e.g. BGMD's mean memory) non-finite is not applied; those tensors are restored
  and the round records ``skipped_step = True`` (False otherwise). A non-robust aggregator still
  collapses (its accuracy shows it): it is only kept from writing NaN or ±Inf into ``x``.

Subclasses set ``name`` (the ``strategy`` key), ``protocol`` (the client protocol, see
:mod:`fedrobust.clients`) and implement :meth:`step`. Protocols that send something other than the
model, or read other replies, override the hooks :meth:`~VectorStrategy.fit_messages` (what each
sampled client receives), :meth:`~VectorStrategy.reply_length` and
:meth:`~VectorStrategy.read_reply` (the rows of the stacked matrix) and
:meth:`~VectorStrategy.check_metrics` (a reply's metrics; the accepted ones are in
``round_metrics``, row by row).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from logging import WARNING
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from flwr.common import (
    Code,
    EvaluateIns,
    EvaluateRes,
    FitIns,
    FitRes,
    GetPropertiesIns,
    Parameters,
    Scalar,
)
from flwr.common.constant import PARTITION_ID_KEY
from flwr.common.logger import log
from flwr.server.client_manager import ClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import Strategy

from ..aggregators.preaggregation import PreAggregation
from ..core.checks import all_finite
from ..core.wire import ndarrays_to_parameters, parameters_to_ndarrays
from ..core.rng import stream_rng
from ..core.errors import ConfigError, RunStopped
from ..optim.schedule import scheduled_lr
from ..core.ndarrays import flatten, payload_bytes, to_ndarrays
from ..attacks.run import attack_summary, build_attack, byzantine_clients
from ..core.results import RoundRecord, results_dict
from ..core.validation import RowStack, check_arrays, check_values, num_examples_reason
from .adversary import craft_round
from .memory import check_server_memory, server_memory_problem

if TYPE_CHECKING:  # config imports the libraries, never the other way round
    from ..config import RunConfig


__all__ = ["VectorStrategy", "select_partitions", "EvaluateFn"]

EvaluateFn = Callable[[torch.Tensor], tuple[float, float]]
"""Maps the flat global model to (test loss, test accuracy)."""

def select_partitions(num_clients: int, k: int, seed: int, server_round: int) -> list[int]:
    """The partition ids taking part in a round: ``k`` of ``range(num_clients)``, seeded, sorted.

    Examples
    --------
    >>> select_partitions(10, 3, seed=0, server_round=1) == select_partitions(10, 3, seed=0, server_round=1)
    True
    >>> len(set(select_partitions(10, 10, seed=0, server_round=5)))
    10
    """
    rng = stream_rng("client-sampling", seed, server_round)
    return sorted(int(i) for i in rng.choice(num_clients, size=k, replace=False))


class VectorStrategy(Strategy):
    """Base strategy: flat server model, seeded sampling by partition id, validated stacking.

    Parameters
    ----------
    cfg : RunConfig
        The run configuration (``lr``, ``seed``, ``num-clients``, ``clients-per-round``, ...).
    x0 : torch.Tensor
        Initial flat model, shape (d,); copied to float32 on ``cfg``'s device.
    shapes : sequence of tuple of int
        Shapes of the model's parameter tensors, in wire order (they sum to d).
    evaluate_fn : callable, optional
        ``evaluate_fn(x) -> (loss, accuracy)`` on the test split; no centralised evaluation if None.
    on_round : callable, optional
        Called with each finished :class:`~fedrobust.core.results.RoundRecord` (progress bars, files).
    """

    name: ClassVar[str] = ""
    protocol: ClassVar[str] = ""
    default_compressor: ClassVar[str | None] = None
    """What ``compressor = auto`` means for this strategy; None: its clients compress nothing."""
    memory_factor: ClassVar[float] = 1.0
    """Peak memory of :meth:`aggregate_fit` in units of the stacked (n, L) float32 matrix, the matrix
    included (1.0: no copy of it); see :mod:`fedrobust.strategies.memory`."""
    memory_vectors: ClassVar[int] = 4
    """d-sized temporaries of one aggregation (see :mod:`fedrobust.strategies.memory`)."""
    trims: ClassVar[str] = ""
    """What the strategy drops a ``beta`` fraction of (``"values"`` of each coordinate, or
    ``"clients"``); empty when it does not read ``beta``."""
    no_pre_aggregation: ClassVar[str] = "it does not declare that its step takes pre-aggregated rows"
    """Why the strategy refuses a ``pre-aggregation`` (empty: it takes one). A step that reads
    which client sent which row (per-client memory, reported norms, sign votes) cannot take rows
    that pre-aggregation mixed or regrouped."""
    uses_root_data: ClassVar[bool] = False
    """Whether the server trains on a root set of ``root-size`` training examples that the run holds
    out of every client's partition (fltrust; :func:`fedrobust.run.build.root_indices`)."""

    def __init__(
        self,
        cfg: RunConfig,
        x0: torch.Tensor,
        shapes: Sequence[tuple[int, ...]],
        *,
        evaluate_fn: EvaluateFn | None = None,
        on_round: Callable[[RoundRecord], None] | None = None,
    ) -> None:
        super().__init__()
        if not callable(getattr(cfg, "torch_device", None)):  # duck-typed: strategies do not import config
            raise TypeError(f"cfg must be a RunConfig, got {type(cfg).__name__}")
        problems = [*self.config_problems(cfg), *self.pre_aggregation_problems(cfg), *self.adversary_problems(cfg)]
        if problems:  # a RunConfig naming this strategy was refused already; this is one naming another
            raise ConfigError("\n".join(problems))
        self.cfg = cfg
        self.device = cfg.torch_device()
        self.attack = build_attack(cfg)  # an omniscient one crafts the Byzantine replies here (strategies.adversary)
        self.pre_aggregation = PreAggregation.from_config(cfg)  # applied to the accepted rows before step()
        self.shapes = [tuple(int(n) for n in s) for s in shapes]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.x = x0.detach().to(self.device, torch.float32).reshape(-1).clone()
        if self.x.numel() != sum(self.sizes):
            raise ValueError(f"x0 has {self.x.numel()} entries but shapes need {sum(self.sizes)}")
        check_server_memory(type(self), cfg, self.x.numel())  # max-server-memory-mb, before any round
        self.evaluate_fn = evaluate_fn
        self.on_round = on_round
        self._created = time.perf_counter()
        # Seconds from construction to round 1's start (initial evaluation, the nodes connecting,
        # Ray's actors starting and reporting their partition ids); None before round 1 starts.
        self.startup_seconds: float | None = None
        self.warnings: list[str] = []  # the run's config warnings, for the results (set by the App)
        self.records: list[RoundRecord] = []
        self._measured_at: float | None = None  # when the last closed round's (or x0's) evaluation ended
        self.initial: dict[str, float] = {}
        # Further metrics of the initial model, merged into initial (set by the App: the validation
        # split's val_accuracy and val_loss); None: none.
        self.initial_metrics_fn: Callable[[torch.Tensor], Mapping[str, float]] | None = None
        # Called with initial once the initial model is evaluated (set by the App: the tensorboard
        # log); None: nothing is told.
        self.on_initial: Callable[[Mapping[str, Any]], None] | None = None
        # What close() calls, once (set by the App: the tensorboard log's close).
        self.closers: list[Callable[[], None]] = []
        self._partition_of: dict[str, int] = {}  # Flower cid -> partition id
        self._open: dict[int, tuple[float, RoundRecord]] = {}  # round -> (start time, record)
        self.server_round = 0  # the round being aggregated (set before step)
        self.round_partitions: list[int] = []  # partition id of each row step() receives
        self.round_metrics: list[dict[str, Scalar]] = []  # the reply metrics of each row step() receives
        self.round_rejections: list[tuple[int, str]] = []  # (partition id, reason) of each rejected reply
        self._spare: np.ndarray | None = None  # the last round's stack buffer, for the next (_spare_rows)
        # Rounds finished before this strategy started (a resumed run): Flower numbers the rounds it
        # drives from 1 again, and the Flower interface below adds this offset (see fedrobust.run.checkpoint).
        self.round_offset = 0
        self._sampled: dict[int, tuple[list[int], list[int]]] = {}  # round -> (sampled ids, ids without a node)
        self._configured = False  # whether a round was configured (a missing node is then a failure)
        self.stopped = False  # set by stop(): no further round, record or checkpoint

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, d={self.x.numel()}, device={self.device})"

    # ------------------------------------------------------------------------------ config hooks
    @classmethod
    def config_problems(cls, cfg: RunConfig) -> list[str]:
        """The values of ``cfg`` this strategy refuses, one line each (default: none).

        :class:`~fedrobust.config.RunConfig` calls the hook of the strategy it names, so such a
        value is a config error before anything runs (``fedrobust run`` exits 2, a sweep refuses
        the grid); the constructor raises the same lines as a
        :class:`~fedrobust.config.ConfigError`.
        """
        return []

    @classmethod
    def pre_aggregation_problems(cls, cfg: RunConfig) -> list[str]:
        """Why the run's ``pre-aggregation`` cannot run before this strategy's step, one line each:
        a value that does not parse, or a strategy that refuses pre-aggregated rows
        (:attr:`no_pre_aggregation`). The config check calls this next to :meth:`config_problems`.
        """
        try:
            pre = PreAggregation.from_config(cfg)
        except ValueError as err:
            return [str(err)]
        if pre is None or not cls.no_pre_aggregation:
            return []
        return [f"pre-aggregation: {cls.name} takes none: {cls.no_pre_aggregation}"]

    @classmethod
    def adversary_problems(cls, cfg: RunConfig) -> list[str]:
        """Why the run's attack cannot run against this strategy, one line each: an adaptive
        omniscient attack (one that calls the server's aggregate) against a strategy that does not
        :meth:`previews_aggregate`. The config check calls this next to :meth:`config_problems`.
        """
        from ..attacks import ATTACKS

        attack = ATTACKS.get(cfg.attack)
        if attack is None or not getattr(attack, "needs_aggregate", False) or cls.previews_aggregate():
            return []
        return [f"attack: {cfg.attack} searches over the server's aggregate, which {cls.name} does not preview "
                "(no aggregate_preview); pick another attack or strategy"]

    @classmethod
    def config_warnings(cls, cfg: RunConfig) -> list[str]:
        """The settings of ``cfg`` this strategy silently caps or ignores, or that leave it less
        robust than the run needs, one line each; :func:`fedrobust.config.config_warnings` adds them
        to its own. The default: ``beta`` below an attacked run's ``byzantine-fraction`` when the
        strategy :attr:`trims`.
        """
        psi = cfg.byzantine_fraction
        if not cls.trims or cfg.attack == "none" or not 0 < psi or cfg.beta >= psi:
            return []
        return [
            f"beta={cfg.beta} < byzantine-fraction={psi}: {cls.name} drops fewer {cls.trims} than there may be "
            "Byzantine clients; set beta >= byzantine-fraction"
        ]

    # ----------------------------------------------------------------------------------- the math
    def step(self, updates: torch.Tensor, weights: torch.Tensor) -> dict[str, Scalar] | None:
        """Move ``self.x`` given the (n, d) accepted client vectors and their example counts (n,).

        Return strategy-specific metrics for the round record, or None.
        """
        raise NotImplementedError

    def lr_at(self, server_round: int) -> float:
        """The step size of ``server_round``: ``lr`` under the run's ``lr-schedule``."""
        return scheduled_lr(self.cfg.lr, self.cfg.lr_schedule, server_round, self.cfg.rounds)

    @property
    def lr(self) -> float:
        """The step size of the round being aggregated (:attr:`server_round`)."""
        return self.lr_at(self.server_round)

    def fit_config(self, server_round: int) -> dict[str, Scalar]:
        """The config dict sent to every client with the model (subclasses may extend it)."""
        c = self.cfg
        return {
            "server-round": server_round,
            "lr": self.lr_at(server_round),
            "local-steps": c.local_steps,
            "batch-size": c.batch_size,
            "seed": c.seed,
            "weight-decay": c.weight_decay,
            "client-momentum": c.client_momentum,
        }

    def fit_messages(
        self, server_round: int, partitions: list[int]
    ) -> list[tuple[list[np.ndarray], dict[str, Scalar]]]:
        """What each sampled partition receives: (arrays, config), one pair per entry of ``partitions``.

        The default sends every client the model ``x`` as the model's arrays with :meth:`fit_config`;
        ``bytes_down`` is the sum of the arrays' bytes over the clients. Pairs may be shared objects.
        """
        message = (to_ndarrays(self.x, self.shapes), self.fit_config(server_round))
        return [message] * len(partitions)

    def reply_length(self, server_round: int) -> int:
        """The length of the vector :meth:`read_reply` writes per reply (default: the model's d)."""
        return sum(self.sizes)

    @classmethod
    def compressor_name(cls, cfg: RunConfig) -> str | None:
        """The compressor a run's clients use: ``compressor``, or for ``auto`` the class's
        ``default_compressor``; None when the strategy compresses nothing (its protocol ignores
        ``compressor``). The one place that decides a run's compressor.
        """
        if cls.default_compressor is None:
            return None
        return cls.default_compressor if cfg.compressor == "auto" else cfg.compressor

    @classmethod
    def reply_length_for(cls, cfg: RunConfig, d: int) -> int:
        """:meth:`reply_length` of a run with a model of ``d`` parameters, before any strategy exists."""
        return d

    @classmethod
    def memory_factor_for(cls, cfg: RunConfig) -> float:
        """:attr:`memory_factor` of a run (subclasses may make it depend on run keys)."""
        return cls.memory_factor

    @classmethod
    def state_bytes_for(cls, cfg: RunConfig, d: int) -> int:
        """Bytes the strategy keeps between rounds (default: the model ``x``, 4d)."""
        return 4 * d

    def check_metrics(self, metrics: dict[str, Scalar]) -> str | None:
        """Why a reply's metrics are not acceptable, or None (default: always acceptable)."""
        return None

    # ------------------------------------------------------------------- the colluding adversary
    def encode_reply(
        self, row: torch.Tensor, metrics: dict[str, Scalar], server_round: int, partition: int
    ) -> tuple[list[np.ndarray], dict[str, Scalar]]:
        """A reply in this protocol's wire format whose :meth:`read_reply` row is ``row``, as a
        client would send it: (arrays, metrics). ``metrics`` are the client's own; the default sends
        ``row`` as the model's arrays and keeps them. The inverse of :meth:`read_reply`, used by the
        colluding adversary (:mod:`fedrobust.strategies.adversary`).
        """
        return to_ndarrays(row, self.shapes), metrics

    def pre_aggregate(self, rows: torch.Tensor, *, owned: bool = False) -> torch.Tensor:
        """The run's ``pre-aggregation`` of a round's rows (the rows themselves when it has none):
        what :meth:`step` and an adaptive attack's preview of the aggregate receive. ``owned``:
        ``rows`` serve this call only and may be overwritten (no (n, d) copy for clipping)."""
        return rows if self.pre_aggregation is None else self.pre_aggregation(rows, self.server_round, owned=owned)

    @classmethod
    def previews_aggregate(cls) -> bool:
        """Whether the class overrides :meth:`aggregate_preview` (adaptive attacks need it)."""
        return cls.aggregate_preview is not VectorStrategy.aggregate_preview

    def aggregate_preview(
        self, rows: torch.Tensor, partitions: list[int], metrics: list[dict[str, Scalar]]
    ) -> torch.Tensor:
        """The aggregate this server would compute from the (m, L) ``rows`` (sent by ``partitions``
        with ``metrics``), in the rows' space, leaving the server's state as it was: what adaptive
        attacks maximise their distance to the honest mean with. Subclasses that can preview their
        aggregate override it (see :meth:`previews_aggregate`).
        """
        raise NotImplementedError(f"{type(self).__name__} does not preview its aggregate")

    def rule_params(self) -> dict[str, Any]:
        """The server rule's parameters the adversary is told (default: ``beta`` when the strategy
        :attr:`trims`, else none)."""
        return {"beta": self.cfg.beta} if self.trims else {}

    # --------------------------------------------------------------------------- Flower interface
    def initialize_parameters(self, client_manager: ClientManager) -> Parameters | None:
        """The initial global model, as the model's ndarrays."""
        return self._parameters()

    def configure_fit(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, FitIns]]:
        """Sample partition ids with the run seed and send each of their clients ``x``.

        The round's clock starts once the nodes are known: the wait for the first round's nodes
        (Ray's start-up) is :attr:`startup_seconds`, not part of round 1's ``round_seconds``.
        """
        self._check_running()
        server_round += self.round_offset
        by_partition = self._clients_by_partition(client_manager, server_round)
        started = time.perf_counter()
        if self.startup_seconds is None:
            self.startup_seconds = started - self._created
        chosen = select_partitions(self.cfg.num_clients, self.cfg.clients_per_round, self.cfg.seed, server_round)
        missing = [p for p in chosen if p not in by_partition]
        if missing and not self._configured:  # the first round: the federation does not fit the config
            raise RuntimeError(
                f"no client holds partition ids {missing}: the federation has {len(by_partition)} nodes with "
                f"partition ids {sorted(by_partition)[:20]}, but num-clients={self.cfg.num_clients}; "
                "run as many SuperNodes as num-clients (flwr run: --federation-config 'num-supernodes=N')"
            )
        if missing:  # nodes lost during the run: failed clients of this round
            log(WARNING, "round %s: no node holds sampled partition ids %s; counted as failed", server_round, missing)
        instructions: dict[tuple[int, int], FitIns] = {}  # one FitIns per distinct (arrays, config)
        pairs, sent = [], 0
        for partition, (arrays, config) in zip(chosen, self.fit_messages(server_round, chosen)):
            if partition not in by_partition:
                continue
            key = (id(arrays), id(config))
            if key not in instructions:
                instructions[key] = FitIns(ndarrays_to_parameters(arrays), config)
            pairs.append((by_partition[partition], instructions[key]))
            sent += payload_bytes(arrays)
        record = RoundRecord(round=server_round, bytes_down=sent, num_clients=len(chosen))
        # Who attacks among the sampled clients (the clients work out the same set on their own).
        record.extra["byzantine_clients"] = sorted(byzantine_clients(self.cfg, server_round).intersection(chosen))
        self._open[server_round] = (started, record)
        self._sampled[server_round] = (chosen, missing)
        self._configured = True
        return pairs

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        """Validate and stack the replies, then :meth:`step`; bad replies are dropped and counted.

        Never raises for what clients send or for clients that fail: a round with no accepted reply
        leaves the model unchanged, and a step that would make the model non-finite is undone
        (``skipped_step``); see the module docstring.
        """
        self._check_running()
        server_round += self.round_offset
        record = self._record(server_round)
        for failure in failures:
            reason = failure if isinstance(failure, BaseException) else failure[1].status.message
            log(WARNING, "round %s: a sampled client failed: %s", server_round, reason)
        # Rows in partition-id order, not in the order replies arrived (Flower gives no order): the
        # aggregate is then bit for bit the same in every run, and through either Flower API.
        results = sorted(results, key=lambda r: self._reply_partition(r[0], r[1], 0))
        self.server_round = server_round  # before the adversary: a preview of the aggregate is this round's
        results = craft_round(self, results, server_round, record)  # an omniscient attack's replies
        updates, weights, bytes_up, rejected = self._stack(results, server_round)
        record.bytes_up = bytes_up
        record.rejected_clients = rejected
        # Failed: sampled clients that raised or timed out (round-timeout), or whose node was gone.
        sampled, missing = self._sampled.pop(server_round, ([], []))
        failed = len(failures) + len(missing)
        if sampled and all(proxy is not None and proxy.cid in self._partition_of for proxy, _ in results):
            replied = {self._partition_of[proxy.cid] for proxy, _ in results}
            record.extra["failed_partitions"] = sorted(set(sampled) - replied)
        record.failed_clients = failed
        record.extra["rejections"] = [list(r) for r in self.round_rejections]
        record.extra["skipped_step"] = False
        if updates.shape[0] > 0:
            t0 = time.perf_counter()
            if self.pre_aggregation is not None:  # mixed or regrouped rows: no longer one per client
                updates = self.pre_aggregate(updates.to(self.device), owned=True)  # the stack is this round's
                weights = torch.ones(updates.shape[0], dtype=weights.dtype)
                record.extra["pre_aggregated_rows"] = int(updates.shape[0])
            extra, skipped = self._guarded_step(updates.to(self.device), weights.to(self.device))
            if skipped:
                record.extra["skipped_step"] = True
                log(WARNING, "round %s: the step would make the model non-finite; not applied", server_round)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            record.aggregation_seconds = time.perf_counter() - t0
            record.extra.update(extra or {})
        elif results or failures:
            log(WARNING, "round %s: no reply accepted; the model is unchanged", server_round)
        metrics: dict[str, Scalar] = {
            "accepted_clients": int(updates.shape[0]),
            "rejected_clients": rejected,
            "failed_clients": failed,
            "bytes_up": bytes_up,
        }
        return self._parameters(), metrics

    def configure_evaluate(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, EvaluateIns]]:
        """No federated evaluation: the global model is evaluated centrally in :meth:`evaluate`."""
        return []

    def aggregate_evaluate(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, EvaluateRes]],
        failures: list[tuple[ClientProxy, EvaluateRes] | BaseException],
    ) -> tuple[float | None, dict[str, Scalar]]:
        """Nothing to aggregate (no federated evaluation)."""
        return None, {}

    def evaluate(self, server_round: int, parameters: Parameters) -> tuple[float, dict[str, Scalar]] | None:
        """Evaluate ``x`` on the test split, then close the round's record (round 0: the initial model)."""
        self._check_running()
        if self.round_offset and server_round == 0:  # a resumed run: the initial model was evaluated before
            return None
        return self.close_round(server_round, self.measure())

    def measure(self) -> tuple[float | None, float | None, float]:
        """The test loss and accuracy of ``x`` now (None without ``evaluate_fn``), and when they
        were measured (``time.perf_counter()``): what :meth:`close_round` takes.

        It only reads ``x``. The in-process engine runs it in a thread of its own while the next
        round's clients fit (:func:`fedrobust.run.inprocess.run_inprocess`).
        """
        loss = accuracy = None
        if self.evaluate_fn is not None:
            loss, accuracy = (float(v) for v in self.evaluate_fn(self.x))
        return loss, accuracy, time.perf_counter()

    def close_round(
        self, server_round: int, measured: tuple[float | None, float | None, float]
    ) -> tuple[float, dict[str, Scalar]] | None:
        """Close round ``server_round``'s record with :meth:`measure`'s output for the model it
        left, as :meth:`evaluate` does (round 0: the initial model). A stopped strategy still
        closes it: the round finished before the stop."""
        if self.round_offset and server_round == 0:
            return None
        server_round += self.round_offset
        loss, accuracy, measured_at = measured
        if server_round == 0:
            self.initial = {"accuracy": accuracy, "loss": loss}
            if self.initial_metrics_fn is not None:
                self.initial.update(self.initial_metrics_fn(self.x))
            if self.on_initial is not None:
                self.on_initial(self.initial)
        elif server_round in self._open:
            started, record = self._open.pop(server_round)
            record.accuracy, record.loss = accuracy, loss
            # From the round's start, or from the previous evaluation's end where it ran beside this round.
            record.round_seconds = measured_at - max(started, self._measured_at or started)
            self.records.append(record)
            if self.on_round is not None:
                self.on_round(record)
        self._measured_at = measured_at
        return None if loss is None else (loss, {"accuracy": accuracy})

    def stop(self) -> None:
        """End the run at the next call from the server (an interrupt, :mod:`fedrobust.run.interrupt`).

        :meth:`configure_fit`, :meth:`aggregate_fit` and :meth:`evaluate` then raise
        :class:`~fedrobust.run.interrupt.RunStopped`, so the round in flight adds no record and no
        checkpoint, and the server loop ends.
        """
        self.stopped = True

    def close(self) -> None:
        """Release what the run keeps open (the callables in :attr:`closers`, each called once) and
        the last round's stack buffer.

        The App closes the strategy after its last round; the engines close it again when a run
        ends, fails or is interrupted (a second call does nothing).
        """
        self._spare = None
        closers, self.closers = self.closers, []
        for close in closers:
            close()

    def _check_running(self) -> None:
        if self.stopped:
            raise RunStopped(f"{self.name}: stopped after {len(self.records)} rounds")

    # ------------------------------------------------------------------------------------ results
    def results(self) -> dict[str, Any]:
        """The results document of the rounds so far (see :mod:`fedrobust.core.results`)."""
        return results_dict(
            self.cfg.to_dict(), self.records, self.initial, startup_seconds=self.startup_seconds,
            warnings=self.warnings, attack=attack_summary(self.cfg),
        )

    # ------------------------------------------------------------------------------------ helpers
    def _parameters(self) -> Parameters:
        return ndarrays_to_parameters(to_ndarrays(self.x, self.shapes))

    def _record(self, server_round: int) -> RoundRecord:
        if server_round not in self._open:  # aggregate_fit without configure_fit (direct calls)
            self._open[server_round] = (time.perf_counter(), RoundRecord(round=server_round))
        return self._open[server_round][1]

    def _clients_by_partition(self, client_manager: ClientManager, server_round: int) -> dict[int, ClientProxy]:
        """The connected nodes by partition id. Before the first round the server waits until
        ``num-clients`` nodes are connected (Flower's ``wait_for``), up to ``round-timeout`` seconds
        (30 s when 0); a node that fails to report its partition id is left out of the round."""
        if not self._partition_of and client_manager.num_available() < self.cfg.num_clients:
            client_manager.wait_for(self.cfg.num_clients, timeout=int(self.cfg.round_timeout or 30))
        clients = client_manager.all()
        unknown = [c for cid, c in clients.items() if cid not in self._partition_of]
        if unknown:
            ins = GetPropertiesIns(config={})

            def ask(client: ClientProxy) -> Any:  # no timeout: actors may take long to start
                try:
                    return client.get_properties(ins, timeout=None, group_id=server_round)
                except Exception as err:  # noqa: BLE001 - a failing node is left out, not a server crash
                    return err

            with ThreadPoolExecutor(max_workers=min(32, len(unknown))) as pool:
                replies = list(pool.map(ask, unknown))
            for client, reply in zip(unknown, replies):
                if isinstance(reply, BaseException) or reply.status.code != Code.OK or PARTITION_ID_KEY not in reply.properties:
                    why = reply if isinstance(reply, BaseException) else reply.status
                    log(WARNING, "node %s did not report its %s: %s", client.cid, PARTITION_ID_KEY, why)
                    continue
                self._partition_of[client.cid] = int(reply.properties[PARTITION_ID_KEY])
        return {self._partition_of[cid]: c for cid, c in clients.items() if cid in self._partition_of}

    def _stack(
        self, results: list[tuple[ClientProxy, FitRes]], server_round: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        """Valid replies as an (n, reply_length) float32 CPU tensor (one copy, into a preallocated buffer).

        The buffer is the last round's again when nothing holds on to that one any more
        (:meth:`_spare_rows`): a fresh (n, d) matrix costs the first touch of every page, 30 ms of
        a 0.6 s round for 100 clients of a 3.2 MB model on a 2-core CPU.
        """
        d = self.reply_length(server_round)
        too_big = server_memory_problem(type(self), self.cfg, self.x.numel(), n=len(results))
        if too_big is not None:  # more replies than clients-per-round (direct calls): refuse, do not stack
            return self._reject_all(results, server_round, too_big, d)
        spare = self._spare_rows(len(results), d)
        stack = RowStack(len(results), d, np.float32, buffer=None if spare is None else spare[: len(results)])
        self._spare = stack.buffer if spare is None else spare
        weights = np.empty(len(results), dtype=np.float64)
        bytes_up = 0
        self.round_partitions = []
        self.round_metrics = []
        for index, (proxy, res) in enumerate(results):
            arrays, reason = self._decode(res)
            partition = self._reply_partition(proxy, res, index)
            if arrays is None:
                bytes_up += sum(len(t) for t in getattr(res.parameters, "tensors", ()) or ())
                stack.reject(partition, reason, server_round)
                continue
            bytes_up += payload_bytes(arrays)
            if not stack.add(index, partition, lambda row: self._check_reply(res, arrays, row), server_round, check=False):
                continue
            weights[len(self.round_partitions)] = res.num_examples
            self.round_partitions.append(partition)
            self.round_metrics.append(dict(res.metrics or {}))
        self.round_rejections = [(int(p), r) for p, r in stack.rejections]
        n = len(stack.accepted)
        return torch.from_numpy(stack.rows), torch.from_numpy(weights[:n]), bytes_up, len(self.round_rejections)

    def _spare_rows(self, n: int, d: int) -> np.ndarray | None:
        """The last round's stack buffer, if it has room for ``n`` rows of ``d`` and nothing but this
        strategy refers to it (no tensor or view of it survived its round: a step, a pre-aggregation
        or an attack that kept one leaves it to them, and this round stacks into a new buffer)."""
        spare = self._spare
        self._spare = None
        if spare is None or spare.shape[1] != d or spare.shape[0] < n:
            return None
        # An object held by one local name only, counted the same way (how many references the
        # call itself adds differs between Python versions): any further one is a survivor's.
        probe = object()
        return spare if sys.getrefcount(spare) == sys.getrefcount(probe) else None

    def _reject_all(
        self, results: list[tuple[ClientProxy, FitRes]], server_round: int, reason: str, d: int
    ) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        """:meth:`_stack`'s answer when no reply may be stacked: every one rejected with ``reason``."""
        self.round_partitions, self.round_metrics = [], []
        self.round_rejections = [(self._reply_partition(p, r, i), reason) for i, (p, r) in enumerate(results)]
        log(WARNING, "round %s: all %s replies rejected: %s", server_round, len(results), reason)
        bytes_up = sum(len(t) for _, r in results for t in (getattr(r.parameters, "tensors", ()) or ()))
        return torch.empty(0, d), torch.empty(0, dtype=torch.float64), bytes_up, len(results)

    def _check_reply(self, res: FitRes, arrays: list[np.ndarray], out: np.ndarray) -> str | None:
        """Why a decoded reply is rejected (None: accepted, its vector written into ``out``): its
        ``num_examples``, payload (:meth:`read_reply`), values and metrics (:meth:`check_metrics`)."""
        reason = num_examples_reason(res.num_examples)
        if reason is not None:
            return reason
        try:
            reason = self.read_reply(arrays, out)
            if reason is None:
                reason = check_values(out)
            if reason is None:
                # Through the engine, metrics arrive as a Mapping that need not be a dict.
                metrics = res.metrics if isinstance(res.metrics, Mapping) else {}
                reason = self.check_metrics(dict(metrics))
        except Exception as err:  # noqa: BLE001 - an untrusted reply that breaks a reader is a bad reply
            return f"the payload does not decode: {type(err).__name__}: {err}"
        return reason

    def _decode(self, res: FitRes) -> tuple[list[np.ndarray] | None, str | None]:
        """The reply's ndarrays, or None and the reason they cannot be had.

        The default :meth:`read_reply` only copies the arrays into its row, so it reads read-only
        views of the message's bytes (one copy less); an overriding reader gets fresh arrays.
        """
        if res.status.code != Code.OK:
            return None, f"status {res.status.code.name}: {res.status.message}"
        try:
            return parameters_to_ndarrays(res.parameters, copy=type(self).read_reply is not VectorStrategy.read_reply), None
        except Exception as err:  # noqa: BLE001 - a malformed payload is a bad reply, not a server crash
            return None, f"the arrays do not deserialise: {type(err).__name__}: {err}"

    def _small_state(self) -> dict[str, torch.Tensor]:
        """``x`` and the strategy's other float tensor attributes of at most d entries (e.g. BGMD's
        mean memory): what a non-finite step rolls back. Larger state (per-client rows) is not copied."""
        d = self.x.numel()
        return {
            k: v for k, v in vars(self).items() if isinstance(v, torch.Tensor) and v.is_floating_point() and v.numel() <= d
        }

    def _guarded_step(self, updates: torch.Tensor, weights: torch.Tensor) -> tuple[dict[str, Scalar] | None, bool]:
        """:meth:`step`, undone when it leaves a non-finite value in :meth:`_small_state`; returns
        (the step's metrics, whether it was skipped)."""
        before = {k: v.clone() for k, v in self._small_state().items()}
        extra = self.step(updates, weights)
        after = self._small_state()
        if all(all_finite(v) for v in after.values()):
            return extra, False
        self.x.copy_(before["x"])
        for name in after:
            if name != "x":
                setattr(self, name, before.get(name))
        return extra, True

    def read_reply(self, arrays: list[np.ndarray], out: np.ndarray) -> str | None:
        """Write the flat client vector of a reply's ndarrays into ``out`` (a row of the (n, d) buffer).

        Return why the reply is malformed (it is then rejected with that reason), or None. The
        default reads the model's arrays (shapes, dtype float32); compressed protocols override it
        to decode their payload. Like :meth:`check_metrics`, every reply check answers with a
        reason or None: the one rejection channel.
        """
        reason = check_arrays(arrays, self.shapes)
        if reason is None:
            flatten(arrays, out=out)
        return reason

    def _reply_partition(self, proxy: ClientProxy | None, res: FitRes, index: int) -> int:
        """The partition id of a reply's sender: known from ``get_properties`` in a run; direct calls
        without a known proxy fall back to the reply's ``partition_id`` metric, then to its position."""
        if proxy is not None and proxy.cid in self._partition_of:
            return self._partition_of[proxy.cid]
        reported = res.metrics.get("partition_id") if res.metrics else None
        return int(reported) if isinstance(reported, int) and not isinstance(reported, bool) else index

    # -------------------------------------------------------------------------------- state
    @property
    def rounds_left(self) -> int:
        """The rounds Flower still has to drive: ``rounds`` minus those finished before a resume
        (:attr:`round_offset`); a resumed run's Flower round t is server round ``round_offset + t``."""
        return self.cfg.rounds - self.round_offset

    def state_dict(self) -> dict[str, Any]:
        """What a restarted strategy needs to continue: the model ``x`` and the last aggregated round.

        Subclasses with server memory (BGMD's residuals) add theirs. Tensors are CPU copies.
        """
        state = {"x": self.x.detach().cpu().clone(), "round": int(self.server_round)}
        attack_state = self.attack.state()
        if attack_state:  # an omniscient attack's memory between rounds (server side)
            state["attack"] = attack_state
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output (onto this strategy's device).

        Raises
        ------
        ValueError
            If ``x`` does not have this model's d entries, or ``round`` is negative.
        """
        x = torch.as_tensor(state["x"], dtype=torch.float32).reshape(-1)
        if x.numel() != self.x.numel():
            raise ValueError(f"state['x'] must have {self.x.numel()} entries, got {x.numel()}")
        if int(state["round"]) < 0:
            raise ValueError(f"state['round'] must be >= 0, got {state['round']}")
        self.x.copy_(x.to(self.device))
        self.server_round = int(state["round"])
        if "attack" in state:
            self.attack.load_state(dict(state["attack"]))

