"""Byzantine clients: an honest protocol client that, in the rounds it is Byzantine, attacks.

A :class:`ByzantineClient` wraps the honest client of the strategy's protocol (any
:class:`~fedrobust.clients.HonestClient`) and, in a round where its partition id is among
:func:`fedrobust.attacks.byzantine_ids` (worked out from the round's ``seed`` and ``server-round``):

- ``data`` attack: runs the honest protocol on its poisoned copy of the local data;
- ``update`` attack: runs the honest protocol and has the honest flat message ``vec`` replaced by
  ``attack.corrupt(vec, generator)`` inside :meth:`HonestClient.reply
  <fedrobust.clients.HonestClient.reply>`, before any encoding; then the encoded reply passes
  through ``attack.corrupt_reply`` (unchanged except for attacks on the wire format, ``malformed``).
  What decides this is :attr:`Attack.corrupts_messages <fedrobust.attacks.Attack.corrupts_messages>`,
  true for update attacks and for a data attack that also rewrites its messages
  (``model-replacement``): that one does both, trains on the poisoned data and corrupts the result.

Either way the reply is built by the honest client, so it has the protocol's wire format
(shapes, dtype, compressed payloads) and the same metrics keys: the server cannot tell a Byzantine
client by its format. In other rounds (``byzantine-mode = dynamic``) it is the honest client.

Examples
--------
>>> from fedrobust.attacks import get_attack
>>> from fedrobust.clients import GradientClient
>>> from fedrobust.models import get_model
>>> honest = GradientClient(get_model("logistic", input_shape=(3,), num_classes=2), torch.ones(4, 3),
...                         torch.tensor([0, 1, 0, 1]), partition_id=0)
>>> byz = ByzantineClient(honest, get_attack("sign-flip"), num_clients=2, fraction=0.5, mode="dynamic")
>>> [byz.is_byzantine(seed=0, server_round=r) for r in range(1, 7)]
[True, True, False, False, False, False]
>>> reply, n, metrics = byz.fit(honest.get_parameters({}), {"seed": 0, "server-round": 1, "batch-size": 4})
>>> honest_reply, _, _ = honest.fit(honest.get_parameters({}), {"seed": 0, "server-round": 1, "batch-size": 4})
>>> bool(all(np.array_equal(a, -b) for a, b in zip(reply, honest_reply)))
True
"""

from __future__ import annotations

import functools
import json

import numpy as np
import torch
from flwr.client import Client, NumPyClient
from flwr.common import ConfigRecord, Scalar

from ..core.rng import stream_generator
from ..attacks import Attack, byzantine_ids
from .adapter import as_client
from .base import HonestClient

__all__ = ["ATTACK_STATE_KEY", "ByzantineClient", "attack_generator"]

ATTACK_STATE_KEY = "fedrobust.attack-state"
"""The ``Context.state`` record in which a Byzantine client keeps its attack's state between rounds."""


def attack_generator(seed: int, partition_id: int, server_round: int) -> torch.Generator:
    """A CPU torch Generator seeded from (seed, partition id, round) for an update attack's draws.

    Its stream differs from the client's minibatch stream
    (:func:`~fedrobust.clients.batch_generator`) of the same ids.

    Examples
    --------
    >>> a = torch.randn(3, generator=attack_generator(0, 1, 2))
    >>> bool(torch.equal(a, torch.randn(3, generator=attack_generator(0, 1, 2))))
    True
    >>> bool(torch.equal(a, torch.randn(3, generator=attack_generator(0, 1, 3))))
    False
    """
    return stream_generator("attack", seed, partition_id, server_round)


class ByzantineClient(NumPyClient):
    """A NumPyClient that runs ``honest``'s protocol and attacks in the rounds it is Byzantine.

    Parameters
    ----------
    honest : HonestClient
        The honest client of the strategy's protocol, on this client's clean data.
    attack : Attack
        The attack (:func:`fedrobust.attacks.get_attack`); its ``kind`` says what it does:
        ``update`` corrupts the message, ``data`` swaps in ``poisoned``, ``none`` stays honest (and a
        data attack with ``corrupts_messages`` does both).
    num_clients : int
        Number of clients N; partition ids are ``0 .. N − 1``.
    fraction : float
        ψ in [0, 1): the share of Byzantine clients (``byzantine-fraction``).
    mode : str
        ``"fixed"`` (one seeded set for the run) or ``"dynamic"`` (a fresh set each round).
    poisoned : (torch.Tensor, torch.Tensor), optional
        This client's data after the data attack (same number of examples and feature shape as
        ``honest.x``); required for a ``data`` attack, ignored otherwise.

    Raises
    ------
    TypeError
        ``honest`` is not a HonestClient or ``attack`` not an Attack.
    ValueError
        ``fraction``, ``mode`` or the partition id out of range, or ``poisoned`` missing or of the
        wrong shape for a data attack.
    """

    def __init__(
        self,
        honest: HonestClient,
        attack: Attack,
        *,
        num_clients: int,
        fraction: float,
        mode: str = "fixed",
        poisoned: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        if not isinstance(honest, HonestClient):
            raise TypeError(f"honest must be a HonestClient, got {type(honest).__name__}")
        if not isinstance(attack, Attack):
            raise TypeError(f"attack must be an Attack (see fedrobust.attacks.get_attack), got {type(attack).__name__}")
        byzantine_ids(num_clients, fraction, mode, seed=0, server_round=0)  # checks the three arguments
        if not 0 <= honest.partition_id < num_clients:
            raise ValueError(
                f"honest.partition_id must lie in [0, num_clients={num_clients}), got {honest.partition_id}"
            )
        self.honest = honest
        self.attack = attack
        self.num_clients = int(num_clients)
        self.fraction = float(fraction)
        self.mode = mode
        self.poisoned: tuple[torch.Tensor, torch.Tensor] | None = None
        if attack.kind == "data":
            self.poisoned = self._check_poisoned(poisoned)

    def _check_poisoned(self, poisoned: tuple[torch.Tensor, torch.Tensor] | None) -> tuple[torch.Tensor, torch.Tensor]:
        if poisoned is None:
            raise ValueError(f"poisoned data is required for the data attack {self.attack.name!r}")
        x, y = poisoned
        if tuple(x.shape) != tuple(self.honest.x.shape) or tuple(y.shape) != tuple(self.honest.y.shape):
            raise ValueError(
                f"poisoned data must have the shapes of the clean data, {tuple(self.honest.x.shape)} and "
                f"{tuple(self.honest.y.shape)}; got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        return x.to(self.honest.device), y.to(self.honest.device)

    @property
    def partition_id(self) -> int:
        """The data partition (client id) of the wrapped honest client."""
        return self.honest.partition_id

    def is_byzantine(self, seed: int, server_round: int) -> bool:
        """Whether this client attacks in ``server_round`` of a run seeded with ``seed``."""
        ids = byzantine_ids(self.num_clients, self.fraction, self.mode, int(seed), int(server_round))
        return self.partition_id in ids

    # ------------------------------------------------------------------------- Flower interface
    def to_client(self) -> Client:
        """This client as a Flower ``Client`` (see :meth:`HonestClient.to_client`: read-only views too)."""
        return as_client(self, views=True)

    def get_properties(self, config: dict[str, Scalar]) -> dict[str, Scalar]:
        """The honest client's properties (partition id, number of examples)."""
        return self.honest.get_properties(config)

    def get_parameters(self, config: dict[str, Scalar]) -> list[np.ndarray]:
        """The honest client's local model."""
        return self.honest.get_parameters(config)

    def fit(
        self, parameters: list[np.ndarray], config: dict[str, Scalar]
    ) -> tuple[list[np.ndarray], int, dict[str, Scalar]]:
        """The honest protocol's reply, attacked when this client is Byzantine this round."""
        seed, server_round = int(config["seed"]), int(config["server-round"])
        honest = self.honest
        if self.attack.kind == "none" or not self.is_byzantine(seed, server_round):
            return honest.fit(parameters, config)
        clean, corrupt_before = (honest.x, honest.y), honest.corrupt_message
        corrupts = self.attack.corrupts_messages
        if self.attack.kind == "data" and self.poisoned is not None:
            honest.x, honest.y = self.poisoned
        if corrupts:
            self._load_attack_state()
            generator = attack_generator(seed, self.partition_id, server_round)
            honest.corrupt_message = functools.partial(self.attack.corrupt, generator=generator)
        try:
            arrays, num_examples, metrics = honest.fit(parameters, config)
        finally:
            honest.x, honest.y = clean
            honest.corrupt_message = corrupt_before
        if corrupts:  # attacks on the wire format itself (e.g. malformed)
            arrays, metrics = self.attack.corrupt_reply(
                arrays, metrics, attack_generator(seed, self.partition_id, server_round)
            )
            self._keep_attack_state()
        return arrays, num_examples, metrics

    def _load_attack_state(self) -> None:
        """Hand the attack what it kept in this client's previous attacked round (see
        :meth:`fedrobust.attacks.Attack.state`)."""
        record = self.honest.state.get(ATTACK_STATE_KEY)
        if record is not None:
            self.attack.load_state(json.loads(str(record["json"])))

    def _keep_attack_state(self) -> None:
        state = self.attack.state()
        if state or ATTACK_STATE_KEY in self.honest.state:
            self.honest.state[ATTACK_STATE_KEY] = ConfigRecord({"json": json.dumps(state)})
