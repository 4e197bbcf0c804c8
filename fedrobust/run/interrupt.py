"""Ctrl-C during a run: stop it, keep the rounds finished so far, leave no process behind.

:func:`catch_interrupt` wraps a run in the main thread. On the first SIGINT it lists the
processes below this one (:func:`fedrobust.core.processes.descendants`, before Ray's shutdown orphans
its actors), then asks the engine to stop: Flower's simulation runtime gets its own stop event
set (its workers finish the client call in flight; see :func:`fedrobust.run.simulation.simulate`), or
else :class:`KeyboardInterrupt` is raised there. Further SIGINTs while the run is being stopped
are ignored (stopping takes a few seconds and must not be cut short). :func:`stop_run` then stops
the strategy (no further round, record or checkpoint), makes Flower's threads that wait for
replies end (:func:`close_grids`), ends the listed processes, and returns :class:`Interrupted`,
which carries the partial results document (:func:`partial_results`), written to ``output``
when set.

Examples
--------
>>> doc = partial_results({"config": {"rounds": 30}, "rounds": [{"round": 1}, {"round": 2}]})
>>> doc["interrupted"], doc["rounds_done"]
(True, 2)
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..core.errors import RunStopped
from ..core.processes import descendants, end_processes

__all__ = [
    "Interrupted", "RunStopped", "InterruptState", "catch_interrupt", "partial_results", "close_grids", "join_threads",
    "stop_strategy",
    "close_strategies",
    "stop_run",
    "exit_if_stuck",
]


#: Seconds to wait for Flower's threads to end once their grids are closed.
_THREAD_GRACE = 5.0


class Interrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C (a :class:`KeyboardInterrupt`, so ``except KeyboardInterrupt`` sees it).

    Attributes
    ----------
    results : dict or None
        The partial results document (:func:`partial_results`); None when the run was stopped
        before its strategy was built.
    path : Path or None
        Where ``results`` was written (the run's ``output``), or None.
    """

    def __init__(self, results: dict[str, Any] | None = None, path: Path | None = None) -> None:
        super().__init__("interrupted")
        self.results = results
        self.path = path

    @property
    def rounds_done(self) -> int:
        """Rounds finished before the interrupt (0 without results)."""
        return 0 if self.results is None else int(self.results["rounds_done"])


def partial_results(results: Mapping[str, Any]) -> dict[str, Any]:
    """``results`` marked as cut short: ``"interrupted": true`` and ``"rounds_done"``."""
    return {**results, "interrupted": True, "rounds_done": len(results.get("rounds", ()))}


class InterruptState:
    """What :func:`catch_interrupt` saw: whether SIGINT came, and the processes alive then."""

    def __init__(self) -> None:
        self.interrupted = False
        self.processes: dict[int, int] = {}


@contextlib.contextmanager
def catch_interrupt(stop: Callable[[Any], bool] | None = None) -> Iterator[InterruptState]:
    """Turn the first SIGINT into :class:`KeyboardInterrupt`, noting the live child processes.

    With ``stop``, the first SIGINT calls ``stop(frame)`` (the main thread's frame it interrupted)
    instead; when that returns True the engine winds down on its own and nothing is raised (see
    :attr:`InterruptState.interrupted`). Later SIGINTs are ignored until the block ends, and so
    are Flower's logs (its runtime dying). Outside the main thread, or when SIGINT is not
    Python's default handler (ignored, or the caller's own), nothing is installed and only
    :attr:`InterruptState.processes` is filled when a KeyboardInterrupt passes.
    """
    state = InterruptState()
    installed = threading.current_thread() is threading.main_thread() and (
        signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )

    flower_log = logging.getLogger("flwr")
    was_disabled = flower_log.disabled

    def on_sigint(signum: int, frame: Any) -> None:
        if state.interrupted:
            return
        state.interrupted = True
        state.processes = descendants()
        # What Flower logs from here on is its dying runtime (actors gone, replies lost): noise.
        flower_log.disabled = True
        if stop is None or not stop(frame):
            raise KeyboardInterrupt

    if installed:
        signal.signal(signal.SIGINT, on_sigint)
    try:
        yield state
    except KeyboardInterrupt:
        if not state.interrupted:
            state.interrupted = True
            state.processes = descendants()
        raise
    finally:
        flower_log.disabled = was_disabled
        if installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def _closed(*args: Any, **kwargs: Any) -> Any:
    raise RunStopped("the run was interrupted")


def stop_strategy(strategy: Any | None) -> None:
    """:meth:`~fedrobust.strategies.VectorStrategy.stop` ``strategy`` (or a MessageStrategy's core)."""
    core = getattr(strategy, "core", strategy)
    if core is not None:
        core.stop()


@contextlib.contextmanager
def close_strategies(strategies: list[Any]) -> Iterator[None]:
    """Close (:meth:`~fedrobust.strategies.VectorStrategy.close`) every strategy appended to
    ``strategies`` when the block ends, however it ends (an error, an interrupt): their open
    files, such as the ``tensorboard`` log, are flushed and closed. A MessageStrategy's core is closed."""
    try:
        yield
    finally:
        for strategy in strategies:
            getattr(strategy, "core", strategy).close()


def close_grids() -> int:
    """Make every Flower Grid that a thread waits on in ``send_and_receive`` raise :class:`RunStopped`.

    Flower's in-memory grid polls its replies without end when ``round-timeout`` is 0, and the
    simulation stops delivering them once interrupted: without this, the ServerApp thread (and the
    threads of a round) would wait for ever and keep the interpreter from exiting. Returns the
    number of grids closed.
    """
    from flwr.server import Grid

    grids: dict[int, Any] = {}
    me = threading.get_ident()
    for ident, frame in sys._current_frames().items():  # noqa: SLF001 - the only handle on those threads
        while frame is not None and ident != me:
            owner = frame.f_locals.get("self") if frame.f_code.co_name == "send_and_receive" else None
            if isinstance(owner, Grid):
                grids[id(owner)] = owner
            frame = frame.f_back
    for grid in grids.values():
        grid.push_messages = _closed
        grid.pull_messages = _closed
    return len(grids)


def join_threads(timeout: float) -> None:
    """Wait up to ``timeout`` seconds in all for the other non-daemon threads to end."""
    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))


def stop_run(
    output: str,
    strategy: Any | None,
    processes: Mapping[int, int],
    shutdown: Callable[[], None] | None = None,
) -> Interrupted:
    """Stop an interrupted run and return the :class:`Interrupted` to raise.

    Parameters
    ----------
    output : str
        The run's ``output`` ('' = write nothing); the partial results go there.
    strategy : VectorStrategy or MessageStrategy, optional
        The run's strategy (None when the run was stopped before building it).
    processes : mapping
        The processes alive at the interrupt (:attr:`InterruptState.processes`).
    shutdown : callable, optional
        Ends the engine (Ray's shutdown), after the server thread and before the processes.
    """
    from ..core.results import write_results

    stop_strategy(strategy)
    close_grids()
    join_threads(_THREAD_GRACE)
    if shutdown is not None:
        shutdown()
    end_processes(processes)
    if strategy is None:
        return Interrupted()
    results = partial_results(strategy.results())
    try:
        path = write_results(output, results) if output else None
    except OSError as err:
        print(f"fedrobust: could not write the partial results to {output}: {err.strerror or err}", file=sys.stderr)
        path = None
    return Interrupted(results, path)


def exit_if_stuck(code: int) -> None:
    """End the process now, with ``code``, when a thread left over from the run would block its exit.

    After a KeyboardInterrupt during Ray's start-up or shutdown, one of Flower's worker threads
    may stay in ``ray.get`` for ever; the interpreter would wait for it at exit. Everything the run
    wrote is on disk by then, so the command line ends without waiting (stdout and stderr flushed).
    """
    stuck = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if stuck:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
