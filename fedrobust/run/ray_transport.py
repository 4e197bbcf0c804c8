"""A round's parameters into Ray's object store once, not once per message: :func:`shared_parameters`.

Flower's Ray backend submits every instruction to a client actor with its whole content, so in
a round of n clients the same model is pickled and copied into Ray's object store n times by
the driver and copied out again by the actors. Within :func:`shared_parameters` (which
:func:`~fedrobust.run.simulation.simulate` enters), Flower's engine builds
:class:`SharedParametersBackend` instead of its ``RayBackend``: every array of at least
:data:`MIN_SHARED_BYTES` in an instruction travels as a reference to one object put once per
distinct payload (the messages of a round carry the same ``bytes`` objects), and each actor
copies a payload out once. Both keep payloads up to
:data:`~fedrobust.run.ray_actor.KEPT_INSTRUCTIONS` times the largest
instruction's shared bytes (the round's model and the one before it), however many arrays a
model has. The instruction an actor's ClientApp gets has the same bytes as before, so the
clients and the records are the same. Each reply is different: its large arrays travel out of
band instead, as NumPy views of their bytes that Ray copies into the object store once
(:func:`~fedrobust.run.ray_actor.out_of_band`), and are bytes again when the driver gets them
(:func:`~fedrobust.run.ray_actor.in_band`), so the server reads the same bytes.

The ClientApp loader Flower's backend sends with every message (a closure around the loaded
ClientApp, pickled by value each time) is put into the object store once instead
(:class:`~fedrobust.run.ray_actor.AppRef`), and each actor fetches it at its first message.

The same backend starts a private Ray instance without Flower's job ``runtime_env``, so that the
client actors start in the workers Ray has ready (:class:`SharedParametersBackend`), and its
actors are fedrobust's (:mod:`fedrobust.run.ray_actor`), which import only what a client needs,
and it ends that instance's autoscaler monitor before ``ray.shutdown()`` (:func:`end_monitor`:
a second less at every run's end). Where the installed Flower does not have these parts as
expected, nothing is changed.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import logging
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import ray
from flwr.app import ArrayRecord, Context, Message, RecordDict
from flwr.common.constant import PARTITION_ID_KEY
from flwr.server.superlink.fleet.vce.backend import raybackend
from flwr.simulation.ray_transport.ray_actor import BasicActorPool, VirtualClientEngineActor

from .ray_actor import MIN_SHARED_BYTES, AppRef, Shared, SharedParametersActor, _Kept, in_band

log = logging.getLogger(__name__)


class _Puts:
    """The driver's payloads in the object store, by the identity of their ``bytes`` (kept alive
    here, so an id is not reused while it is a key)."""

    def __init__(self) -> None:
        self.puts = 0
        self._held = _Kept(lambda held: len(held[0]))  # id(bytes) -> (bytes, token, ref)
        self._lock = threading.Lock()

    def get(self, data: bytes, instruction_bytes: int = 0) -> tuple[str, Any]:
        with self._lock:
            held = self._held.get(id(data))
            if held is not None and held[0] is data:
                self._held.move_to_end(id(data))
                return held[1], held[2]
            token, ref = uuid.uuid4().hex, ray.put(np.frombuffer(data, dtype=np.uint8))
            self.puts += 1
            self._held.keep(id(data), (data, token, ref), max(instruction_bytes, len(data)))
            return token, ref


def lighten(message: Message, puts: _Puts) -> tuple[Message, Shared]:
    """``message`` with its large arrays' data replaced by references (a copy: ``message`` is left
    as it is, and so are the records other messages may share with it)."""
    if message.has_error() or not message.has_content():
        return message, ([], {})
    where: list[tuple[str, str, str]] = []
    refs: dict[str, Any] = {}
    records: dict[str, Any] = {}
    shared_bytes = sum(len(a.data) for record in message.content.array_records.values() for a in record.values()
                       if len(a.data) >= MIN_SHARED_BYTES)
    for name, record in message.content.items():
        if isinstance(record, ArrayRecord) and any(len(a.data) >= MIN_SHARED_BYTES for a in record.values()):
            light = {}
            for key, array in record.items():
                if len(array.data) >= MIN_SHARED_BYTES:
                    token, ref = puts.get(array.data, shared_bytes)
                    refs[token] = ref
                    where.append((name, key, token))
                    array = copy.copy(array)
                    array.data = b""
                light[key] = array
            record = ArrayRecord(light)
        records[name] = record
    if not where:
        return message, ([], {})
    out = copy.copy(message)
    out.__dict__["_content"] = RecordDict(records)
    return out, (where, refs)


class SharedParametersBackend(raybackend.RayBackend):
    """Flower's ``RayBackend``, sending each instruction's large arrays as shared objects.

    A private Ray instance (no ``address`` among the ``init_args``) is started without Flower's
    job ``runtime_env``: Flower sets the driver's ``PYTHONPATH`` in ``os.environ`` and again as the
    job's environment variable, and Ray starts a job that has a ``runtime_env`` of its own in fresh
    worker processes (through its runtime-env agent) instead of the ones it started beforehand.
    The processes of a private instance are children of this one and inherit ``os.environ``, so
    the workers see the same ``PYTHONPATH``. A cluster to attach to (``address``, or the
    ``RAY_ADDRESS`` environment variable) gets Flower's ``runtime_env``.
    """

    #: Whether :meth:`init_ray` started a private Ray instance (False: it attached to one).
    private = False

    def init_ray(self, backend_config: Any) -> None:
        init_args = dict(backend_config.get(self.init_args_key) or {})
        if ray.is_initialized() or "address" in init_args or os.environ.get("RAY_ADDRESS"):  # an attach
            super().init_ray(backend_config)
            return
        init_args.setdefault("include_dashboard", False)
        # The driver's sys.path, then the PYTHONPATH it had: the value Flower's init_ray gives it.
        os.environ["PYTHONPATH"] = os.pathsep.join([*sys.path, *filter(None, [os.environ.get("PYTHONPATH")])])
        ray.init(**init_args)
        self.private = True

    def terminate(self) -> None:
        """Flower's ``terminate`` (the actors, then ``ray.shutdown()``); a private instance's
        autoscaler monitor is ended first (:func:`end_monitor`)."""
        if self.private:
            end_monitor()
        super().terminate()

    def build(self, app_fn: Any) -> None:
        self.pool = BasicActorPool(
            actor_type=SharedParametersActor, client_resources=self.client_resources, actor_kwargs=self.actor_kwargs
        )
        self.pool.add_actors_to_pool(self.pool.actors_capacity)
        self.app_fn = app_fn
        self.app_ref = AppRef((ray.put(app_fn),))  # pickled once, not with every message
        self.puts = _Puts()

    def process_message(self, message: Message, context: Context) -> tuple[Message, Context]:
        partition_id = context.node_config[PARTITION_ID_KEY]
        if self.pool is None:
            raise ValueError("The actor pool is empty, unfit to process messages.")
        if self.app_fn is None:
            raise ValueError("Unspecified function to load a `ClientApp`; call the backend's `build()` first.")
        light, shared = lighten(message, self.puts)
        future = None
        try:
            future = self.pool.submit(
                lambda actor, app_fn, msg, cid, state: actor.run_shared.remote(app_fn, msg, cid, state, shared),
                (self.app_ref, light, str(partition_id), context),
            )
            reply, context = self.pool.fetch_result_and_return_actor_to_pool(future)
        except Exception:
            if future is not None:
                self.pool.add_actor_back_to_pool(future)
            raise
        in_band(reply, context)
        return reply, context


def end_monitor() -> bool:
    """End this process's private Ray instance's autoscaler monitor now; True when one was running.

    ``ray.shutdown()`` stops the GCS first, then sends the monitor SIGTERM; the monitor's handler
    reports its own end to the GCS, which is gone by then, and Ray kills it after a grace of one
    second (Ray 2.55's ``Node._kill_process_impl``): a second at the end of every run. A private
    instance has no autoscaler to keep, so the monitor gets now what Ray gives it after the grace
    (SIGKILL), and ``ray.shutdown()`` then skips it as already ended. This reads Ray's private
    node object; where that is not as expected it does nothing.
    """
    try:
        from ray._private import ray_constants, worker

        infos = list(worker._global_node.all_processes.get(ray_constants.PROCESS_TYPE_MONITOR, []))
        processes = [info.process for info in infos]
    except Exception:  # noqa: BLE001 - Ray's internals moved: its own shutdown, a second slower
        return False
    running = [p for p in processes if p.poll() is None]
    for process in running:
        process.kill()
    for process in running:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
    return bool(running)


def flower_parts_as_expected() -> bool:
    """Whether Flower's Ray backend and actor pool are the ones this module was written against."""
    backend = raybackend.RayBackend
    expected = {
        backend.init_ray: ["self", "backend_config"],
        backend.build: ["self", "app_fn"],
        backend.process_message: ["self", "message", "context"],
        backend.terminate: ["self"],
        BasicActorPool.__init__: ["self", "actor_type", "client_resources", "actor_kwargs"],
        BasicActorPool.submit: ["self", "actor_fn", "job"],
        BasicActorPool.fetch_result_and_return_actor_to_pool: ["self", "future"],
        VirtualClientEngineActor.run: ["self", "client_app_fn", "message", "cid", "context"],
    }
    try:  # Ray's tracing adds a _ray_trace_ctx parameter to the methods of actor classes
        return all([q for q in inspect.signature(f).parameters if q != "_ray_trace_ctx"] == p for f, p in expected.items())
    except (TypeError, ValueError):
        return False


@contextlib.contextmanager
def shared_parameters() -> Iterator[bool]:
    """Within the block, Flower's simulation engine uses :class:`SharedParametersBackend`.

    Yields whether it does (False: Flower's parts are not as expected, its backend is kept).
    """
    if not flower_parts_as_expected():
        log.debug("Flower's Ray backend is not as expected: its own transport is kept")
        yield False
        return
    original = raybackend.RayBackend
    raybackend.RayBackend = SharedParametersBackend
    try:
        yield True
    finally:
        raybackend.RayBackend = original
