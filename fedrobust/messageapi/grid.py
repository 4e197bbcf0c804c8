"""An in-process :class:`flwr.serverapp.Grid`: every message goes to a ClientApp in this process.

:class:`LocalGrid` plays a federation of ``num_nodes`` SuperNodes without a SuperLink or Ray: node
``i`` holds partition ``i`` (``node_config["partition-id"]``) and keeps its ``Context`` (and so
its ``Context.state``) for the whole run, as a simulated SuperNode does. Node ids are random
64-bit integers, as Flower's are, so a strategy cannot rely on their order. Each message is
handled when it is pushed, one at a time (thread-safe), on a deep copy, so client and server
never share objects; a ClientApp that raises produces an error reply, as Flower's engine does.

Both of fedrobust's ServerApps run on it: the Message-API one, and the legacy one (Flower's
compatibility layer drives legacy strategies through any Grid). Tests use it to run every strategy
through both APIs in seconds.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
from flwr.app import Context, Error, Message, RecordDict
from flwr.common.constant import PARTITION_ID_KEY, SUPERLINK_NODE_ID, ErrorCode
from flwr.serverapp import Grid
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

__all__ = ["LocalGrid", "ClientAppFn"]

ClientAppFn = Callable[[Message, Context], Message]
"""A ClientApp, or any callable with its signature."""


class LocalGrid(Grid):
    """A Grid whose ``num_nodes`` nodes run ``client_app`` in this process.

    Parameters
    ----------
    client_app : callable
        A :class:`flwr.clientapp.ClientApp` (legacy or Message API), or any
        ``(Message, Context) -> Message`` callable.
    num_nodes : int
        Number of nodes; node ``i`` gets ``node_config = {"partition-id": i, "num-partitions": num_nodes}``.
    run_config : mapping, optional
        Every node's ``context.run_config`` (the ClientApp reads its RunConfig there when it was
        not built with one).
    seed : int
        Seeds the random node ids.
    run_id : int
        The run's id (also set as this process's Flower task identity, as ``run_simulation`` does).
    """

    def __init__(
        self,
        client_app: ClientAppFn,
        num_nodes: int,
        *,
        run_config: Mapping[str, Any] | None = None,
        seed: int = 0,
        run_id: int = 1,
    ) -> None:
        if not callable(client_app):
            raise TypeError(f"client_app must be a ClientApp or a callable, got {type(client_app).__name__}")
        if isinstance(num_nodes, bool) or not isinstance(num_nodes, int) or num_nodes < 1:
            raise ValueError(f"num_nodes must be an int >= 1, got {num_nodes!r}")
        self.client_app = client_app
        ids = np.random.default_rng(seed).choice(2**63 - 1, size=num_nodes, replace=False) + 1
        self.contexts: dict[int, Context] = {
            int(node): Context(
                run_id=run_id,
                node_id=int(node),
                node_config={PARTITION_ID_KEY: p, "num-partitions": num_nodes},
                state=RecordDict(),
                run_config=dict(run_config or {}),
            )
            for p, node in enumerate(ids)
        }
        self._run = Run.create_empty(run_id)
        self._replies: dict[str, Message] = {}
        self._lock = threading.Lock()
        self.messages_handled = 0
        TaskIdentity.task_id = 1
        TaskIdentity.run_id = run_id
        TaskIdentity.node_id = SUPERLINK_NODE_ID

    def __repr__(self) -> str:
        return f"LocalGrid(num_nodes={len(self.contexts)}, run_id={self._run.run_id})"

    def node_of(self, partition_id: int) -> int:
        """The node id that holds ``partition_id``."""
        for node, context in self.contexts.items():
            if context.node_config[PARTITION_ID_KEY] == partition_id:
                return node
        raise KeyError(f"no node holds partition {partition_id}")

    # ------------------------------------------------------------------------------ Grid API
    def set_run(self, run: Run) -> None:
        """Use ``run`` (its ``run_id``) for the messages of this grid."""
        if not isinstance(run, Run):
            raise TypeError(f"run must be a Run, got {type(run).__name__}")
        self._run = run

    @property
    def run(self) -> Run:
        """The run this grid operates in."""
        return self._run

    def create_message(
        self, content: RecordDict, message_type: str, dst_node_id: int, group_id: str, ttl: float | None = None
    ) -> Message:
        """A message to ``dst_node_id`` (Flower deprecates this in favour of the Message constructor)."""
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        """The node ids, in random order as Flower's."""
        return list(self.contexts)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        """Deliver each message to its node's ClientApp now; return the message ids."""
        ids = []
        for message in messages:
            if message.metadata.dst_node_id not in self.contexts:
                raise ValueError(f"no node {message.metadata.dst_node_id} in this grid")
            message_id = str(uuid.uuid4())
            message.metadata.__dict__["_message_id"] = message_id
            reply = self._handle(copy.deepcopy(message))
            with self._lock:
                self._replies[message_id] = reply
            ids.append(message_id)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        """The replies to ``message_ids`` not pulled yet."""
        with self._lock:
            return [self._replies.pop(i) for i in message_ids if i in self._replies]

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        """Deliver the messages and return their replies (handled in order; ``timeout`` unused)."""
        return self.pull_messages(self.push_messages(messages))

    # ------------------------------------------------------------------------------ helpers
    def _handle(self, message: Message) -> Message:
        context = self.contexts[message.metadata.dst_node_id]
        with self._lock:  # one ClientApp call at a time (legacy strategies send from several threads)
            self.messages_handled += 1
            try:
                reply = self.client_app(message, context)
            except Exception as err:  # noqa: BLE001 - a raising ClientApp is an error reply, as in Flower
                reason = f"{type(err)}:<'{err}'>"
                reply = Message(Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=reason), reply_to=message)
        reply.metadata.__dict__["_message_id"] = str(uuid.uuid4())
        return copy.deepcopy(reply)
