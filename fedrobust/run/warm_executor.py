"""A warm SuperExec for a SuperNode in ``--isolation process``: one forked ClientApp process per message.

Flower 1.41 runs every message a SuperNode receives in a fresh ``flwr-clientapp`` process, which
pays the imports of torch, scikit-learn, Flower's runtime and fedrobust each time (2-10 s here,
more than a round's training). This executor imports those libraries once, then polls the
SuperNode's Runtime API (``AcquireTask``) and forks a child per task that runs Flower's own
``run_clientapp`` with the task's token, as ``flwr-clientapp`` would. Each message still gets a
fresh process (a crash or a leak stays in it), and the ClientApp code comes from the run's FAB:
the ``fedrobust`` modules imported for warming are dropped before forking, so a child imports
the app's own copy.

Run it next to ``flower-supernode --isolation process --port PORT``::

    python -m fedrobust.run.warm_executor --runtime-api-address 127.0.0.1:PORT

POSIX only (``os.fork``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import time
from collections.abc import Sequence

__all__ = ["WARM_MODULES", "preload", "run", "main"]

# What a fedrobust ClientApp process imports before it trains: the app, its data loaders'
# libraries (scikit-learn, mlxtend, Flower Datasets) and Flower's ClientApp runtime.
WARM_MODULES = (
    "fedrobust.run.app",
    "sklearn.model_selection",
    "sklearn.datasets",
    "sklearn.preprocessing",
    "mlxtend.data",
    "flwr_datasets.partitioner",
    "flwr.supernode.runtime.run_clientapp",
)
_APP_PACKAGE = "fedrobust"
log = logging.getLogger("fedrobust.run.warm_executor")


def preload(modules: Sequence[str] = WARM_MODULES, drop: str | None = _APP_PACKAGE) -> list[str]:
    """Import ``modules``, then forget the ``drop`` package's own modules; return those that failed.

    The libraries stay imported (and shared copy-on-write with every forked child); the app's
    package is imported again by each child, from the run's FAB.
    """
    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as err:  # noqa: BLE001 - a missing optional library only costs speed
            failed.append(f"{name} ({type(err).__name__}: {err})")
    if drop:
        for name in [m for m in sys.modules if m == drop or m.startswith(drop + ".")]:
            del sys.modules[name]
    return failed


def _run_task(address: str, token: str, parent: int) -> None:
    """The forked child: run one ClientApp task like ``flwr-clientapp --insecure`` would, then exit."""
    code = 1
    try:
        from flwr.supernode.runtime.run_clientapp import run_clientapp

        run_clientapp(runtime_api_address=address, token=token, insecure=True, certificates=None,
                      parent_pid=parent, runtime_dependency_install=False)
        code = 0
    except SystemExit as done:  # Flower ends the task with sys.exit(code)
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except BaseException:  # noqa: BLE001 - never unwind into the parent's loop
        log.exception("ClientApp task failed")
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run(address: str, poll_interval: float = 0.1, modules: Sequence[str] = WARM_MODULES) -> None:
    """Warm up, then serve the SuperNode's ClientApp tasks at ``address`` until killed.

    Parameters
    ----------
    address : str
        The SuperNode's Runtime API, ``host:port`` (plain HTTP on loopback, as Flower's
        subprocess isolation uses it).
    poll_interval : float
        Seconds between ``AcquireTask`` polls when there is no task (Flower's SuperExec: 1 s).
    modules : sequence of str
        Modules to import before serving (:data:`WARM_MODULES`).
    """
    if not hasattr(os, "fork"):
        raise RuntimeError("the warm executor needs os.fork (POSIX); use isolation 'process' instead")
    if not 0.01 <= poll_interval <= 60:
        raise ValueError(f"poll_interval must lie in [0.01, 60] seconds, got {poll_interval}")
    started = time.monotonic()
    for problem in preload(modules):
        log.warning("not preloaded: %s", problem)
    log.warning("warm executor ready in %.1f s; serving %s", time.monotonic() - started, address)

    from flwr.proto.runtime_pb2 import AcquireTaskRequest  # pylint: disable=no-name-in-module
    from flwr.supercore.constant import TaskType
    from flwr.supercore.interceptors import RuntimeVersionHttpInterceptor
    from flwr.supercore.retry import make_simple_http_retry_invoker
    from flwr.supercore.runtime import RuntimeHttpClient

    client = RuntimeHttpClient.from_server_address(
        server_address=address, insecure=True, root_certificates=None,
        interceptors=[RuntimeVersionHttpInterceptor(component_name="SuperExec")],
        retry_invoker=make_simple_http_retry_invoker(),
    )
    request = AcquireTaskRequest(supported_task_types=[TaskType.CLIENT_APP])
    children: set[int] = set()
    me = os.getpid()
    while True:
        for pid in list(children):
            if os.waitpid(pid, os.WNOHANG)[0]:
                children.discard(pid)
        res = client.AcquireTask(request)
        if res.HasField("task") and res.token:
            pid = os.fork()
            if pid == 0:
                _run_task(address, res.token, me)
            children.add(pid)
            continue
        time.sleep(poll_interval)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fedrobust.run.warm_executor", description=__doc__.splitlines()[0])
    parser.add_argument("--runtime-api-address", required=True, help="the SuperNode's Runtime API, host:port")
    parser.add_argument("--poll-interval", type=float, default=0.1, help="seconds between polls [0.1]")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    run(args.runtime_api_address, poll_interval=args.poll_interval)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
