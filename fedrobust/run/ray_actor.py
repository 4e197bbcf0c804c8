"""The client actor of fedrobust's Ray transport (:mod:`fedrobust.run.ray_transport`).

This module is what a Ray worker imports to become a client actor, so it imports only what a
client needs: Ray, Flower's records and its ``ClientApp``. Flower's own actor class lives in
``flwr.simulation``, whose package imports the whole simulation engine and its link state (about
0.9 s of imports in every actor on a 2-core machine, before the first message); this actor does
what that one does without them.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import ray
from flwr.app import Context, Message, RecordDict
from flwr.clientapp.client_app import ClientApp, ClientAppException, LoadClientAppError

log = logging.getLogger(__name__)

#: Arrays smaller than this (bytes) travel inside their message's pickle, as Flower sends them;
#: larger ones of an instruction as shared objects (:mod:`fedrobust.run.ray_transport`), of a
#: reply out of band (:func:`out_of_band`).
MIN_SHARED_BYTES = 1 << 16

#: Payloads the driver keeps in the object store, and each actor keeps copied out: those of the
#: largest instruction seen, this many times over (the round's, and the one before it).
KEPT_INSTRUCTIONS = 2

#: Where each shared array goes back, and the objects: ``([(record, array, token)], {token: ref})``.
Shared = tuple[list[tuple[str, str, str]], dict[str, Any]]


class AppRef(tuple):
    """The run's ClientApp loader, put once into the object store: ``AppRef((ref,))``.

    Flower's backend sends its loader (a closure holding the loaded ClientApp) with every message,
    so the driver pickles it by value each time (about 1 ms of a 2-core driver's time per message)
    and the actor unpickles it again. A reference inside a tuple is not resolved by Ray; the actor
    fetches the loader once (:func:`app_loader`).
    """

    __slots__ = ()

    @property
    def ref(self) -> Any:
        return self[0]


def app_loader(app: Any, loaded: dict[str, Any]) -> Callable[[], ClientApp]:
    """The ClientApp loader ``app`` stands for (in an actor): ``app`` itself, or the one an
    :class:`AppRef` refers to, fetched at its first message and kept in ``loaded`` (one run's)."""
    if not isinstance(app, AppRef):
        return app
    key = app.ref.hex()
    if key not in loaded:
        loaded.clear()
        loaded[key] = ray.get(app.ref)
    return loaded[key]


class _Kept(collections.OrderedDict):
    """Payloads by key, oldest first, at most :data:`KEPT_INSTRUCTIONS` times the largest
    instruction's shared bytes (``size``: one payload's bytes)."""

    def __init__(self, size) -> None:
        super().__init__()
        self.size, self.total, self.largest = size, 0, 0

    def keep(self, key: Any, value: Any, instruction_bytes: int) -> None:
        self[key] = value
        self.total += self.size(value)
        self.largest = max(self.largest, instruction_bytes)
        while len(self) > 1 and self.total > KEPT_INSTRUCTIONS * self.largest:
            _, dropped = self.popitem(last=False)
            self.total -= self.size(dropped)


def actor_payloads() -> _Kept:
    """An actor's payloads copied out of the object store, by token (see :func:`restore`)."""
    return _Kept(len)


def restore(message: Message, shared: Shared, payloads: _Kept) -> Message:
    """Put the shared payloads back into ``message`` (in an actor; ``payloads``: those it copied
    out, from :func:`actor_payloads`)."""
    where, refs = shared
    fetched = {}
    for name, key, token in where:
        data = payloads.get(token) or fetched.get(token)
        if data is None:
            data = fetched[token] = ray.get(refs[token]).tobytes()
        message.content[name][key].data = data
    total = sum(len(message.content[name][key].data) for name, key, _ in where)
    for token, data in fetched.items():
        payloads.keep(token, data, total)
    return message


def _record_arrays(*records: RecordDict) -> Iterator[Any]:
    """Every array of the records' ArrayRecords (the callers pick the large ones)."""
    for record_dict in records:
        for record in record_dict.array_records.values():
            for array in record.values():
                yield array


def out_of_band(reply: Message, context: Context) -> None:
    """Give the large arrays of ``reply`` and of ``context.state`` NumPy views of their ``bytes``
    (in the actor, before Ray pickles them back to the driver; :func:`in_band` undoes it there).

    Ray pickles with protocol 5: a NumPy array's buffer goes into the object store out of band,
    in one copy, where ``bytes`` are copied into the pickle first and out of it again at the
    driver (a 3.2 MB reply: about 10 ms against 4-5 ms on 2 cores). The bytes are the same; the
    array's other fields, and any identifier Flower cached for it, are left as they are.
    """
    if reply.has_error() or not reply.has_content():
        return
    for array in _record_arrays(reply.content, context.state):
        if isinstance(array.data, bytes) and len(array.data) >= MIN_SHARED_BYTES:
            array.__dict__["data"] = np.frombuffer(array.data, dtype=np.uint8)


def in_band(reply: Message, context: Context) -> None:
    """Turn the arrays :func:`out_of_band` sent as NumPy views back into ``bytes`` (at the driver:
    a copy out of the object store, whose read-only buffer Ray lends only while it is referenced)."""
    if reply.has_error() or not reply.has_content():
        return
    for array in _record_arrays(reply.content, context.state):
        if isinstance(array.data, np.ndarray):
            array.__dict__["data"] = array.data.tobytes()


def run_client_app(
    client_app_fn: Callable[[], ClientApp], message: Message, cid: str, context: Context
) -> tuple[str, Message, Context]:
    """``message`` through the ClientApp ``client_app_fn`` loads, as Flower's client actor runs it.

    Returns ``(cid, reply, context)``. An app that cannot be loaded raises its
    ``LoadClientAppError``; any other error in the app comes out as a ``ClientAppException``, which
    Flower's engine turns into an error reply.
    """
    try:
        app = client_app_fn()
        return cid, app(message=message, context=context), context
    except LoadClientAppError:
        raise
    except Exception as error:
        raise ClientAppException(str(error)) from error


@ray.remote
class SharedParametersActor:
    """A client actor whose instructions may come with shared payloads (:func:`restore`).

    It has the methods Flower's actor pool calls: ``run`` (:func:`run_client_app`, whose reply
    goes back :func:`out_of_band`) and ``terminate``; and ``run_shared``, which restores the
    payloads first, and whose loader may be an :class:`AppRef`.
    """

    def __init__(self, on_actor_init_fn: Callable[[], None] | None = None) -> None:
        if on_actor_init_fn:
            on_actor_init_fn()
        self.payloads = actor_payloads()
        self.apps: dict[str, Any] = {}

    def run(self, client_app_fn: Any, message: Message, cid: str, context: Context):
        cid, reply, context = run_client_app(client_app_fn, message, cid, context)
        out_of_band(reply, context)
        return cid, reply, context

    def run_shared(self, client_app_fn: Any, message: Message, cid: str, context: Context, shared: Shared):
        app_fn = app_loader(client_app_fn, self.apps)
        return self.run(app_fn, restore(message, shared, self.payloads), cid, context)

    def terminate(self) -> None:
        log.debug("Terminating a client actor")
        ray.actor.exit_actor()
