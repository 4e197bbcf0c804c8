"""Run one simulation in-process on Flower's simulation engine (Ray backend): :func:`simulate`.

The ServerApp runs in a thread of this process; every client runs in a Ray actor process that
reserves ``num-cpus`` CPUs and ``num-gpus`` GPUs (a fraction shares a GPU: ``num-gpus = 0.25``
puts 4 client actors on each GPU). Flower's engine shuts Ray down when the run ends (a private
instance stops, an attached process disconnects), so every run starts or attaches again.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..config import RunConfig
from .flower_polling import flower_polling
from .handover import write_handover
from .interrupt import RunStopped, catch_interrupt, close_grids, close_strategies, stop_run, stop_strategy
from ..core.results import RoundRecord

__all__ = ["simulate", "check_runnable", "backend_config", "client_resources", "local_actors"]


def local_actors(cfg: RunConfig) -> int:
    """Client actors that fit side by side on this machine's CPUs, ``num-cpus`` each (at least one)."""
    return max(1, math.floor((os.cpu_count() or 1) / cfg.num_cpus))


def client_resources(cfg: RunConfig) -> dict[str, float]:
    """Ray resources of one client actor: ``num-cpus``, and ``num-gpus`` GPUs.

    With ``num-gpus = 0`` and a device that resolves to CUDA, the GPUs are shared evenly among
    the actors that fit by CPU (otherwise Ray would hide the GPUs from the clients).
    """
    gpus = cfg.num_gpus
    if gpus == 0 and cfg.torch_device().type == "cuda":
        import torch

        gpus = math.floor(10_000 * min(1.0, torch.cuda.device_count() / local_actors(cfg))) / 10_000
    return {"num_cpus": cfg.num_cpus, "num_gpus": gpus}


def backend_config(cfg: RunConfig) -> dict[str, Any]:
    """The Ray backend config Flower's ``run_simulation`` takes for this run.

    With ``ray-address`` set, ``init_args["address"]`` makes ``ray.init`` attach to that running
    cluster instead of starting a private one.
    """
    init_args: dict[str, Any] = {"logging_level": "ERROR"}
    if cfg.ray_address:
        init_args["address"] = cfg.ray_address
    return {"client_resources": client_resources(cfg), "init_args": init_args}


def _leave_other_ray_cluster(cfg: RunConfig) -> None:
    # Flower calls ray.init only when Ray is not initialised yet: a process still attached to
    # another cluster (or running a private one from an earlier run) would silently keep using
    # it. The cluster reports its own address, which need not be the one dialled, so always
    # reconnect.
    import ray

    if cfg.ray_address and ray.is_initialized():
        ray.shutdown()


def _stop_flower(frame: Any) -> bool:
    """Set the stop event of Flower's simulation runtime, found among the interrupted frame's callers.

    Its workers then finish the client call in flight and end, and Flower shuts Ray down itself; a
    KeyboardInterrupt instead would shut Ray down under a worker waiting in ``ray.get``, which then
    waits for ever (and the interpreter with it, at exit). False when the frame is not inside the
    runtime (Ray still starting, say): the caller raises KeyboardInterrupt then.
    """
    while frame is not None:
        event = frame.f_locals.get("f_stop")
        if str(frame.f_globals.get("__name__", "")).startswith("flwr.") and isinstance(event, threading.Event):
            event.set()
            return True
        frame = frame.f_back
    return False


def _shutdown_ray() -> None:
    # Flower shuts Ray down when its runtime stops; an interrupt during start-up may come first.
    import ray

    if ray.is_initialized():
        ray.shutdown()


def check_runnable(cfg: RunConfig) -> None:
    """Fail fast, before Ray starts, on what a valid config can still get wrong here.

    Checks that ``output``, ``checkpoint-dir`` and ``tensorboard`` can be written
    (:mod:`fedrobust.core.paths`; their folders are created) and that ``tensorboard`` has its
    package, resolves the device, loads the dataset, builds the model and the partitions (all cached, so
    the in-process ServerApp reuses them).

    Raises
    ------
    ValueError
        An output path that cannot be written or ``tensorboard`` without its package (a
        ConfigError), a missing CUDA device, dataset
        files, or a partitioner that cannot split the data so; compressor parameters larger than the model (a ConfigError), a server aggregation larger
        than ``max-server-memory-mb`` (:class:`~fedrobust.strategies.memory.ServerMemoryError`), a
        checkpoint that ``resume`` cannot continue or that a fresh run would overwrite (:func:`fedrobust.run.checkpoint.resume_round`).
    """
    from .app import check_model_size
    from .checkpoint import resume_round
    from ..models import flat_params
    from ..strategies import STRATEGIES
    from ..strategies.memory import check_server_memory
    from .build import build_model, client_indices, load_splits

    from ..core.paths import check_output_dir, check_output_file

    if cfg.output:
        check_output_file(cfg.output, "output")
    if cfg.checkpoint_dir:
        check_output_dir(cfg.checkpoint_dir, "checkpoint-dir")
    if cfg.tensorboard:
        from .tensorboard_log import require_tensorboard

        check_output_dir(cfg.tensorboard, "tensorboard")
        require_tensorboard()
    cfg.torch_device()
    d = flat_params(build_model(cfg, load_splits(cfg))).numel()
    check_model_size(cfg, d)
    check_server_memory(STRATEGIES[cfg.strategy], cfg, d)  # max-server-memory-mb
    client_indices(cfg, 0)
    resume_round(cfg)


def simulate(
    config: RunConfig | Mapping[str, Any] | None = None,
    *,
    progress: bool = False,
    verbose: bool = False,
    on_round: Callable[[RoundRecord], None] | None = None,
    warn: bool = True,
    **overrides: Any,
) -> dict[str, Any]:
    """Run one simulation and return its results document.

    Parameters
    ----------
    config : RunConfig or mapping, optional
        The run (a mapping uses run-config keys, ``"num-clients"``, or field names).
    progress : bool
        Show a progress bar with one step per round.
    verbose : bool
        Keep Flower's INFO logs (by default only its warnings and errors are shown).
    on_round : callable, optional
        Called with each finished :class:`~fedrobust.core.results.RoundRecord`.
    warn : bool
        Log the run's :func:`~fedrobust.config.config_warnings` through Flower's logger when the
        server starts (False: the caller reported them, as ``fedrobust run`` does).
    **overrides
        Config fields by field name, e.g. ``rounds=3, num_clients=4``.

    Returns
    -------
    dict
        ``{"fedrobust-version", "config", "initial", "rounds": [per-round records]}``, the same
        document ``output`` (when set) is written as.

    Raises
    ------
    fedrobust.run.interrupt.Interrupted
        On Ctrl-C (a KeyboardInterrupt): the run is stopped, Ray and every process it started are
        ended, and the rounds finished so far are written to ``output`` marked ``"interrupted"``.
    """
    from flwr.simulation import run_simulation

    from .ray_transport import shared_parameters

    if isinstance(config, RunConfig):
        cfg = config.replace(**overrides) if overrides else config
    else:
        cfg = RunConfig.from_mapping(config, **overrides)
    check_runnable(cfg)
    if cfg.api == "message":  # the Message-API App (fedrobust.messageapi); the same model, see docs/message-api.md
        from ..messageapi import make_client_app, make_server_app
    else:
        from .app import make_client_app, make_server_app
    resources = backend_config(cfg)
    _leave_other_ray_cluster(cfg)
    strategies: list[Any] = []
    quiet_level = logging.INFO if verbose else logging.WARNING

    def request_stop(frame: Any) -> bool:
        stop_strategy(strategies[-1] if strategies else None)
        close_grids()
        return _stop_flower(frame)

    # close_strategies exits last: after stop_run has stopped an interrupted run's server thread.
    with close_strategies(strategies), catch_interrupt(request_stop) as caught, \
            _progress_bar(cfg, enabled=progress) as advance, _flower_log_level(quiet_level), \
            flower_polling(cfg.num_clients), shared_parameters(), \
            tempfile.TemporaryDirectory(prefix="fedrobust-handover-") as folder:
        # The splits and partitions check_runnable built, for the client actors (run.handover).
        handover = write_handover(cfg, folder)

        def record_round(record: RoundRecord) -> None:
            advance(record)
            if on_round is not None:
                on_round(record)

        try:
            run_simulation(
                server_app=make_server_app(cfg, on_round=record_round, on_strategy=strategies.append, warn=warn),
                client_app=make_client_app(cfg, handover=handover),
                num_supernodes=cfg.num_clients,
                backend_name="ray",
                backend_config=resources,
                verbose_logging=verbose,
            )
        except (KeyboardInterrupt, RunStopped):
            if not caught.interrupted:
                raise
        if caught.interrupted:
            strategy = strategies[-1] if strategies else None
            raise stop_run(cfg.output, strategy, caught.processes, shutdown=_shutdown_ray)
    if not strategies:
        raise RuntimeError("the simulation ended before its ServerApp built a strategy (see the log above)")
    results = strategies[-1].results()
    if len(results["rounds"]) != cfg.rounds:
        done = len(results["rounds"])
        raise RuntimeError(f"the simulation recorded {done} of {cfg.rounds} rounds (see the log above)")
    return results


def _drop_known_notices(record: logging.LogRecord) -> bool:
    # run_simulation is the documented Python entry point of this design (the notice points users
    # at `flwr run`, which fedrobust supports too).
    return "`run_simulation` function is deprecated" not in record.getMessage()


@contextlib.contextmanager
def _flower_log_level(level: int) -> Iterator[None]:
    logger = logging.getLogger("flwr")
    before = logger.level
    logger.setLevel(level)
    logger.addFilter(_drop_known_notices)
    try:
        with warnings.catch_warnings():
            # Ray's notice about a future default; client GPUs here never rely on that default
            # (see client_resources).
            warnings.filterwarnings("ignore", message="Tip: In future versions of Ray", category=FutureWarning)
            yield
    finally:
        logger.removeFilter(_drop_known_notices)
        logger.setLevel(before)


@contextlib.contextmanager
def _progress_bar(cfg: RunConfig, enabled: bool) -> Iterator[Callable[[RoundRecord], None]]:
    if not enabled:
        yield lambda record: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(f"{cfg.strategy} on {cfg.dataset}", total=cfg.rounds)

        def advance(record: RoundRecord) -> None:
            acc = "" if record.accuracy is None else f" acc {record.accuracy:.3f}"
            bar.update(task, advance=1, description=f"{cfg.strategy} on {cfg.dataset}: round {record.round}{acc}")

        yield advance
