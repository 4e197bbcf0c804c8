"""A sequential in-process engine: the App's strategy and clients, without Ray.

:func:`run_inprocess` drives the same objects as a Flower run (the App's
:func:`~fedrobust.run.app.make_strategy` and :func:`~fedrobust.run.app.make_client`, a client rebuilt
for every message from its partition's ``Context`` as Flower does, messages as Flower ``FitIns``
/ ``FitRes``), one client after the other in this process. It gives the same results as
:func:`fedrobust.simulate` for the same config (the seeded sampling, Byzantine selection and
client randomness depend on partition ids and rounds only), and skips Ray's start-up and
per-message overhead, which dominates small models on small machines. Experiment scripts and
``fedrobust sweep --engine inprocess`` use it; Flower's engine stays the reference.

A client that raises, or replies with a status other than OK, is counted as a failure, as
Flower's engine does.

The whole run, server and clients, computes at ``client-threads`` torch threads (default 1, as a
Flower client actor; 0: the caller's count), and the caller's count is back after it. Its
clients then compute exactly as Flower's actors do, and its records are the same bits whatever
the process's own count: a sweep's cells give the same records with one job (every core) as with
``--jobs N`` (cores / N each). Torch does not promise the same bits at another thread count
(whole-vector sums split by thread). ``client-threads = 0`` computes on all of the process's
threads: faster on a small machine, the same records only at the same thread count.

While a round's clients fit, the previous round's model is evaluated in a thread of its own
(:func:`evaluation_beside`, in the legacy API's loop here and in the Message API's,
:func:`fedrobust.messageapi.run_local`): at the default one thread, a 2-core machine's second core
takes the evaluation, which otherwise adds to every round. The evaluation only reads ``x``, which
changes at the next ``aggregate_fit``, after the next round's fits; the round's record is closed
(checkpoint, ``on_round``, ``after_round``) just before it. The records are the same as one step
after the other (the same computations at the same thread count), and a run stopped or failing
during the next round's fits still closes the finished round. There is no evaluation thread on a
GPU, with ``client-threads = 0``, when two threads of ``client-threads`` do not fit in the caller's
torch threads (a sweep job's share of the cores), or for a strategy with an ``evaluate`` of its
own. A model of one's own must not draw from torch's global RNG in its evaluation (``eval()``)
forward: it would draw beside the clients' seeded fits.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch
from flwr.common import (
    Code,
    Context,
    DisconnectRes,
    EvaluateIns,
    EvaluateRes,
    FitIns,
    FitRes,
    GetParametersIns,
    GetParametersRes,
    GetPropertiesIns,
    GetPropertiesRes,
    RecordDict,
    ReconnectIns,
)
from flwr.common.constant import PARTITION_ID_KEY
from flwr.server.client_manager import SimpleClientManager
from flwr.server.client_proxy import ClientProxy

from ..config import RunConfig
from ..core.threads import kept_torch_threads
from .interrupt import catch_interrupt, close_strategies, stop_run
from ..core.results import RoundRecord

__all__ = ["EVALUATION_THREAD", "EvaluationBeside", "LocalProxy", "evaluation_beside", "run_inprocess"]

#: The name (prefix) of the thread that evaluates a round's model beside the next round's clients.
EVALUATION_THREAD = "fedrobust-evaluate"


class LocalProxy(ClientProxy):
    """A ClientProxy that builds the partition's client for every message, in this process.

    The partition's ``Context.state`` persists across messages, as a SuperNode's does.
    """

    def __init__(self, cfg: RunConfig, partition_id: int) -> None:
        super().__init__(cid=str(partition_id))
        self.cfg = cfg
        self.context = Context(
            run_id=0, node_id=partition_id, node_config={PARTITION_ID_KEY: partition_id}, state=RecordDict(),
            run_config={},
        )

    def _client(self):
        from .app import make_client

        return make_client(self.cfg, self.context)

    def get_properties(self, ins: GetPropertiesIns, timeout: float | None, group_id: int | None) -> GetPropertiesRes:
        return self._client().get_properties(ins)

    def get_parameters(self, ins: GetParametersIns, timeout: float | None, group_id: int | None) -> GetParametersRes:
        return self._client().get_parameters(ins)

    def fit(self, ins: FitIns, timeout: float | None, group_id: int | None) -> FitRes:
        return self._client().fit(ins)

    def evaluate(self, ins: EvaluateIns, timeout: float | None, group_id: int | None) -> EvaluateRes:
        raise NotImplementedError("fedrobust evaluates centrally")

    def reconnect(self, ins: ReconnectIns, timeout: float | None, group_id: int | None) -> DisconnectRes:
        return DisconnectRes(reason="")


def run_inprocess(
    cfg: RunConfig,
    on_round: Callable[[RoundRecord], None] | None = None,
    after_round: Callable[[Any, int], None] | None = None,
    *,
    warn: bool = True,
) -> dict[str, Any]:
    """Run ``cfg`` with the App's strategy and clients in this process; return the results document.

    Parameters
    ----------
    cfg : RunConfig
        The run.
    on_round : callable, optional
        Receives each finished round record (as in :func:`fedrobust.simulate`).
    after_round : callable, optional
        ``after_round(strategy, round)``, called after each round (to measure the model).
    warn : bool
        Log the run's :func:`~fedrobust.config.config_warnings` (False: the caller reported them).

    Returns
    -------
    dict
        The results document (``docs/simulation.md``), written to ``cfg.output`` too when set.

    Raises
    ------
    fedrobust.run.interrupt.Interrupted
        On Ctrl-C (a KeyboardInterrupt): the rounds finished so far are written to ``output``,
        marked ``"interrupted"`` (:func:`fedrobust.run.interrupt.partial_results`).
    """
    strategies: list[Any] = []
    threads = torch.get_num_threads()  # the caller's: what the run may use
    with kept_torch_threads(), close_strategies(strategies), catch_interrupt():
        if cfg.client_threads:  # the clients would set it at their first build: the server computes so too
            torch.set_num_threads(cfg.client_threads)
        try:
            if cfg.api == "message":  # the Message-API App on an in-process Grid (the same results)
                from ..messageapi import run_local

                return run_local(cfg, on_round, after_round, on_strategy=strategies.append, warn=warn, threads=threads)
            return _run_legacy(cfg, on_round, after_round, strategies.append, warn, threads)
        except KeyboardInterrupt:
            raise stop_run(cfg.output, strategies[-1] if strategies else None, {}) from None


def _run_legacy(
    cfg: RunConfig,
    on_round: Callable[[RoundRecord], None] | None,
    after_round: Callable[[Any, int], None] | None,
    on_strategy: Callable[[Any], None],
    warn: bool,
    threads: int,
) -> dict[str, Any]:
    from .app import make_strategy

    strategy = make_strategy(cfg, on_round, warn=warn)
    on_strategy(strategy)
    manager = SimpleClientManager()
    for p in range(cfg.num_clients):
        manager.register(LocalProxy(cfg, p))
    strategy.evaluate(0, None)
    last = strategy.rounds_left  # a resumed run starts after its checkpoint
    with evaluation_beside(cfg, threads, strategy, after_round) as evaluation:
        for rnd in range(1, last + 1):
            results: list[tuple[ClientProxy, FitRes]] = []
            failures: list[tuple[ClientProxy, FitRes] | BaseException] = []
            for proxy, ins in strategy.configure_fit(rnd, None, manager):
                try:
                    res = proxy.fit(ins, None, rnd)
                except Exception as err:  # noqa: BLE001 - a failing client is a round failure, as in Flower
                    failures.append(err)
                    continue
                (results if res.status.code == Code.OK else failures).append((proxy, res))
            evaluation.settle()  # the last round's evaluation ran while these clients fit
            strategy.aggregate_fit(rnd, results, failures)
            evaluation.start(rnd, last=rnd == last)
    return strategy.results()


class EvaluationBeside:
    """A round's central evaluation, run beside the next round's clients where there is a thread
    for it (:func:`evaluation_beside`), for the in-process engines' loops.

    :meth:`start` evaluates round r's model: at once (no thread, or ``last``), or in the thread;
    :meth:`settle`, called after round r + 1's fits and before its ``aggregate_fit`` (which changes
    ``x``), waits for that evaluation and closes round r's record (``close_round``, then
    ``after_round``). An evaluation is dropped only once its result is in, so a Ctrl-C during the
    wait still closes the round on the way out of :func:`evaluation_beside`.
    """

    def __init__(self, strategy: Any, pool: ThreadPoolExecutor | None, after_round: Callable[[Any, int], None] | None):
        self.strategy, self.pool, self.after_round = strategy, pool, after_round
        self.pending: tuple[int, Future] | None = None  # the last aggregated round, its model being evaluated

    def start(self, server_round: int, *, last: bool) -> None:
        """Evaluate round ``server_round``'s model (now when there is no thread or it is the ``last``)."""
        if self.pool is None or last:
            self.strategy.evaluate(server_round, None)  # measure and close_round, as one step
            if self.after_round is not None:
                self.after_round(self.strategy, server_round)
        else:  # x stays this round's model until the next aggregate_fit, after the next fits
            self.pending = (server_round, self.pool.submit(self.strategy.measure))

    def settle(self) -> None:
        """Wait for the evaluation :meth:`start` left running, and close its round."""
        if self.pending is not None:
            measured = self.pending[1].result()
            done, self.pending = self.pending[0], None
            self._close(done, measured)

    def _close(self, server_round: int, measured: tuple[float | None, float | None, float]) -> None:
        self.strategy.close_round(server_round, measured)
        if self.after_round is not None:
            self.after_round(self.strategy, server_round)


@contextlib.contextmanager
def evaluation_beside(
    cfg: RunConfig, threads: int, strategy: Any, after_round: Callable[[Any, int], None] | None = None
) -> Iterator[EvaluationBeside]:
    """The run's :class:`EvaluationBeside`, with a thread that evaluates a round's model while the
    next round's clients fit, or without one; a round evaluated when the block ends by an error or
    a stop is closed on the way out (it finished, as it would have without the overlap).

    The evaluation runs at the run's torch threads (``client-threads``), as it would in the main
    thread: the same bits. There is a thread for it on a CPU run whose clients and evaluation,
    side by side, stay within the caller's torch threads (2 x ``client-threads`` <= ``threads``, the
    count before the run: the second core of a 2-core machine at the default 1); otherwise they would
    only compete for the same cores. A strategy with an ``evaluate`` of its own (an extension's) gets
    it called as before, one step after the other.
    """
    from ..strategies.base import VectorStrategy

    own_evaluate = type(strategy).evaluate is not VectorStrategy.evaluate
    if own_evaluate or cfg.torch_device().type != "cpu" or not 0 < 2 * cfg.client_threads <= threads:
        yield EvaluationBeside(strategy, None, after_round)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=EVALUATION_THREAD) as pool:
        evaluation = EvaluationBeside(strategy, pool, after_round)
        try:
            yield evaluation
        except BaseException:
            with contextlib.suppress(Exception):
                evaluation.settle()
            raise

