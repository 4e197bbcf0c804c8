"""The shared part of every honest client: local data, the model, seeded minibatches, replies.

A client is a :class:`flwr.client.NumPyClient` built anew for each message by the ClientApp's
``client_fn``; what must survive between rounds lives in Flower's ``Context.state`` (a
``RecordDict``), which the client receives as ``state``. The base class keeps a small
``ConfigRecord`` there (:data:`STATE_KEY`): rounds taken part in and total bytes sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from flwr.client import Client, NumPyClient
from flwr.common import Array, ArrayRecord, ConfigRecord, RecordDict, Scalar
from flwr.common.constant import PARTITION_ID_KEY

from ..core.rng import stream_generator
from .adapter import as_client
from ..models import flat_params, set_flat_params
from ..models.params import copy_parameters
from ..core.ndarrays import flatten, payload_bytes, to_ndarrays

__all__ = ["HonestClient", "STATE_KEY", "batch_generator"]

STATE_KEY = "fedrobust-client"


def batch_generator(seed: int, partition_id: int, server_round: int) -> torch.Generator:
    """A CPU torch Generator seeded from (seed, partition id, round): reproducible minibatches.

    Examples
    --------
    >>> a = torch.randint(100, (3,), generator=batch_generator(0, 1, 2))
    >>> b = torch.randint(100, (3,), generator=batch_generator(0, 1, 2))
    >>> bool((a == b).all())
    True
    """
    return stream_generator("minibatch", seed, partition_id, server_round)


class HonestClient(NumPyClient):
    """Base of the honest clients; subclasses implement ``fit`` for their protocol.

    Parameters
    ----------
    model : torch.nn.Module
        A :class:`fedrobust.models.FedModel` (``.loss(out, y)``, ``.predict(out)``) on ``device``.
    x, y : torch.Tensor
        This client's training examples and int64 labels (moved to ``device``).
    partition_id : int
        The data partition this client holds (its identity for seeded sampling).
    device : torch.device or str
        Where the client computes.
    state : flwr.common.RecordDict, optional
        ``Context.state``: per-client memory that survives between rounds.
    parameters_from : torch.nn.Module, optional
        A model of the same structure whose parameter values ``model`` takes at its first use,
        unless :meth:`load` overwrites them all first (then they are never copied): the engines
        pass a working model reset without its parameters (:func:`fedrobust.run.build.client_model`)
        and the run's template, which spares one copy of the model per message.
    """

    protocol: ClassVar[str] = ""

    corrupt_message: Callable[[torch.Tensor], torch.Tensor] | None = None
    """Set by a :class:`~fedrobust.clients.ByzantineClient` in the rounds it runs an update attack:
    :meth:`reply` then sends ``corrupt_message(vec)`` in place of the honest flat message ``vec``."""

    def __init__(
        self,
        model: torch.nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        partition_id: int,
        device: torch.device | str = "cpu",
        state: RecordDict | None = None,
        parameters_from: torch.nn.Module | None = None,
    ) -> None:
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"x and y must hold the same, non-zero number of examples, got {len(x)} and {len(y)}")
        self.device = torch.device(device)
        self._model = model.to(self.device)
        # The model whose parameter values ours takes at its first use, unless load() sets them all
        # first (a working model reset without its parameters: run.build.client_model).
        self._parameters_from = parameters_from
        self.x = x.to(self.device)
        self.y = y.to(self.device)
        self.partition_id = int(partition_id)
        self.state = state if state is not None else RecordDict()
        self.shapes = [tuple(p.shape) for p in self._model.parameters()]

    @property
    def model(self) -> torch.nn.Module:
        """The client's model. Built with ``parameters_from``, it takes that model's parameter
        values here, at its first use, unless :meth:`load` has already overwritten them all."""
        if self._parameters_from is not None:
            copy_parameters(self._model, self._parameters_from)
            self._parameters_from = None
        return self._model

    @model.setter
    def model(self, model: torch.nn.Module) -> None:
        self._model, self._parameters_from = model, None

    # ------------------------------------------------------------------------- Flower interface
    def to_client(self) -> Client:
        """This client as a Flower ``Client``: Flower's ``NumPyClient`` wrapper, on the faster wire
        codec of :mod:`fedrobust.core.wire` (the same bytes; see :func:`~fedrobust.clients.adapter.as_client`).

        ``fit`` gets read-only views of the message's arrays: a client reads them (:meth:`load`
        copies them into its model) and never writes to them."""
        return as_client(self, views=True)

    def get_properties(self, config: dict[str, Scalar]) -> dict[str, Scalar]:
        """Report the partition id (the server samples by it) and the number of examples."""
        return {PARTITION_ID_KEY: self.partition_id, "num-examples": len(self.x)}

    def get_parameters(self, config: dict[str, Scalar]) -> list[np.ndarray]:
        """The local model as ndarrays."""
        return to_ndarrays(flat_params(self.model), self.shapes)

    # ------------------------------------------------------------------------------- helpers
    def load(self, parameters: Sequence[np.ndarray]) -> torch.Tensor:
        """Set the model to the received parameters; return them as a flat vector on the device."""
        vec = flatten(parameters).to(self.device)
        set_flat_params(self._model, vec)  # every parameter: none is left to take from parameters_from
        self._parameters_from = None
        return vec

    def minibatches(self, config: dict[str, Scalar], steps: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``steps`` minibatches of ``batch-size`` examples, drawn without replacement within a batch.

        The draw comes from :meth:`minibatch_generator`, so runs are reproducible.
        """
        g = self.minibatch_generator(config)
        b = min(int(config["batch-size"]), len(self.x))
        out = []
        for _ in range(steps):
            idx = torch.randperm(len(self.x), generator=g)[:b].to(self.device)
            out.append((self.x[idx], self.y[idx]))
        return out

    def minibatch_generator(self, config: dict[str, Scalar]) -> torch.Generator:
        """The round's minibatch generator: seeded by (``seed``, partition id, ``server-round``)."""
        return batch_generator(int(config["seed"]), self.partition_id, int(config["server-round"]))

    def batch_loss(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """The model's mean loss on one minibatch (train mode, graph kept for backward)."""
        self.model.train()
        return self.model.loss(self.model(xb), yb)

    def reply(
        self, vec: torch.Tensor, num_examples: int, metrics: dict[str, Scalar] | None = None
    ) -> tuple[list[np.ndarray], int, dict[str, Scalar]]:
        """Package a flat vector as the fit reply and update the per-client state.

        The metrics carry ``bytes_sent`` (payload bytes of this reply), ``partition_id`` and
        ``rounds_participated`` (from ``Context.state``), plus ``metrics``.
        A Byzantine client's update attack (:attr:`corrupt_message`) replaces ``vec`` first, before
        any encoding, so its reply has the protocol's wire format.
        """
        if self.corrupt_message is not None:
            vec = self.corrupt_message(vec)
        extra = self.message_metrics(vec)
        arrays = self.encode(vec)
        sent = payload_bytes(arrays)
        memory = self._memory()
        memory["rounds-participated"] = int(memory["rounds-participated"]) + 1
        memory["bytes-sent"] = int(memory["bytes-sent"]) + sent
        out: dict[str, Scalar] = {
            "bytes_sent": sent,
            "partition_id": self.partition_id,
            "rounds_participated": int(memory["rounds-participated"]),
            **(metrics or {}),
            **extra,
        }
        return arrays, int(num_examples), out

    def message_metrics(self, vec: torch.Tensor) -> dict[str, Scalar]:
        """Metrics computed from the flat message actually sent (after any attack), added to the
        reply's metrics; none by default (the norm-thresholding protocol reports the norm here)."""
        return {}

    def encode(self, vec: torch.Tensor) -> list[np.ndarray]:
        """The wire form of the flat message: the model's float32 arrays (compressed protocols
        override this to send a compressor's compact payload)."""
        return to_ndarrays(vec, self.shapes)

    def state_vector(self, key: str, field: str) -> torch.Tensor | None:
        """A model-sized vector kept in ``Context.state[key][field]`` (float32 on the client's device),
        or None when the client has none yet.

        Raises
        ------
        ValueError
            If the stored vector's length is not the model's d.
        """
        if key not in self.state:
            return None
        vec = torch.from_numpy(self.state[key][field].numpy().copy()).to(self.device)
        d = sum(int(np.prod(s)) for s in self.shapes)
        if vec.numel() != d:
            raise ValueError(f"the vector {key!r} in Context.state has {vec.numel()} entries, the model {d}")
        return vec

    def keep_state_vector(self, key: str, field: str, vec: torch.Tensor) -> None:
        """Store ``vec`` as float32 in ``Context.state[key][field]`` (read back by :meth:`state_vector`)."""
        self.state[key] = ArrayRecord({field: Array(vec.detach().to("cpu", torch.float32).numpy())})

    def _memory(self) -> ConfigRecord:
        if STATE_KEY not in self.state:
            self.state[STATE_KEY] = ConfigRecord({"rounds-participated": 0, "bytes-sent": 0})
        return self.state[STATE_KEY]

    def state_summary(self) -> dict[str, Any]:
        """The per-client memory kept in ``Context.state`` (for inspection and tests)."""
        return dict(self._memory())
