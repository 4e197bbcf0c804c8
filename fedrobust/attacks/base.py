"""The attack interface: :class:`Attack` and its two kinds, :class:`UpdateAttack` and :class:`DataAttack`."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from ..core.registry import init_params

from ._checks import check_data, check_generator, check_message, check_rng

__all__ = ["Attack", "UpdateAttack", "DataAttack", "KINDS", "randn_like"]

KINDS = ("none", "update", "data", "omniscient")
"""The kinds of attack: ``none`` (honest), ``update`` (corrupts messages), ``data`` (poisons local data),
``omniscient`` (colluding: crafts the Byzantine replies from the round's honest ones, see
:mod:`fedrobust.attacks.omniscient`)."""


class Attack:
    """Base class of all attacks; on its own it is the honest behaviour.

    Each kind overrides one hook; the other one stays the identity (returning a copy). A Byzantine
    client trains on the :meth:`poison`-ed data of a ``data`` attack, and passes its messages
    through :meth:`corrupt` (and :meth:`corrupt_reply`) when :attr:`corrupts_messages` is true: for
    ``update`` attacks, and for a data attack that also rewrites its messages (``model-replacement``
    scales the update it trained on poisoned data).

    Subclasses implement ``_corrupt`` (update attacks) or ``_poison`` (data attacks) and are
    registered with :func:`~fedrobust.attacks.register_attack`, which sets ``name``.

    Attributes
    ----------
    name : str
        The registry name (e.g. ``"bit-flip"``).
    kind : str
        ``"none"``, ``"update"``, ``"data"`` or ``"omniscient"``.
    params : dict
        Constructor parameters, for logs and the results file.
    """

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "none"

    @property
    def params(self) -> dict[str, Any]:
        """The constructor's parameters and their values (read from attributes of the same name)."""
        names, _ = init_params(type(self))
        return {n: getattr(self, n) for n in names if hasattr(self, n)}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.params == other.params  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(self.params.items()))))

    @property
    def corrupts_messages(self) -> bool:
        """Whether a Byzantine client passes its messages through :meth:`corrupt` and
        :meth:`corrupt_reply` (default: the ``update`` attacks)."""
        return self.kind == "update"

    def for_client(
        self, *, partition_id: int, num_clients: int, clients_per_round: int, num_byzantine: int,
        byzantine_rank: int | None = None, server_step: float = 1.0,
    ) -> Attack:
        """The attack as the client ``partition_id`` of this run plays it (default: itself).

        The run builds every Byzantine client's attack through this hook, so an attack whose
        defaults depend on the run (``model-replacement``'s boost, ``dba``'s trigger part) can
        resolve them; the attack library does not read the run configuration.

        Parameters
        ----------
        partition_id : int
            The client's partition id.
        num_clients, clients_per_round : int
            N and the n clients sampled each round.
        num_byzantine : int
            floor(ψ · N), the run's Byzantine clients.
        byzantine_rank : int, optional
            The client's index among the sorted Byzantine ids under ``byzantine-mode = fixed``;
            None under ``dynamic`` (the set changes every round).
        server_step : float
            η, the factor the server applies to the mean of the updates (1 for fedavg).
        """
        return self

    def state(self) -> dict[str, Any]:
        """What the attack remembers between rounds (default: nothing), as JSON-serialisable values.

        **Lifetime.** Every engine builds a fresh copy of the attack for each message a client
        answers (Flower builds a client per message; the in-process engine does the same). An
        attack that keeps state between rounds returns it here; the Byzantine client stores it in
        its ``Context.state`` after each attacked round and hands it to :meth:`load_state` before
        the next one. So the state is per client and per run, the same under every engine, and
        checkpointed with the client.
        """
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned in the client's previous attacked round (default: ignore it)."""

    def corrupt(self, message: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The message a Byzantine client sends in place of the honest ``message``.

        Parameters
        ----------
        message : torch.Tensor
            The honest message (usually a flat float vector: a gradient, a model difference, a
            cubic step, ...), on any device.
        generator : torch.Generator, optional
            Source of the random draws (on any device; draws are made there, then moved to the
            message's device, so a seeded CPU generator gives the same result on CPU and CUDA).
            None: torch's default generator. Deterministic attacks ignore it.

        Returns
        -------
        torch.Tensor
            A new tensor with the shape, dtype and device of ``message``.
        """
        message = check_message(message)
        check_generator(generator)
        out = self._corrupt(message, generator)
        if not isinstance(out, torch.Tensor) or out.shape != message.shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            want = tuple(message.shape)
            raise ValueError(f"{type(self).__name__}._corrupt must return a tensor of shape {want}, got {got}")
        return out.to(device=message.device, dtype=message.dtype)

    def corrupt_reply(
        self, arrays: list[np.ndarray], metrics: dict[str, Any], generator: torch.Generator | None = None
    ) -> tuple[list[np.ndarray], dict[str, Any]]:
        """The encoded reply (wire arrays and metrics) a Byzantine client sends; default: unchanged.

        Called after the protocol encoded the (already :meth:`corrupt`-ed) message; attacks on the
        wire format itself (e.g. ``malformed``) override it.
        """
        return list(arrays), dict(metrics)

    def poison(
        self, x: np.ndarray, y: np.ndarray, num_classes: int, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The local data a Byzantine client trains on in place of its honest ``(x, y)``.

        Parameters
        ----------
        x : numpy.ndarray
            Floating-point features, ``(N, C, H, W)`` images or ``(N, F)`` tabular rows.
        y : numpy.ndarray
            Integer labels of shape ``(N,)`` in ``[0, num_classes - 1]``.
        num_classes : int
            Number of classes C (>= 2).
        rng : numpy.random.Generator, optional
            Source of the random draws; None: a fresh unseeded one. Deterministic attacks ignore it.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            New arrays with the shapes and dtypes of ``x`` and ``y``; the inputs are never modified.
        """
        num_classes = check_data(x, y, num_classes)
        rng = check_rng(rng)
        x_out, y_out = self._poison(x, y, num_classes, rng)
        if x_out is x or y_out is y or np.may_share_memory(x_out, x) or np.may_share_memory(y_out, y):
            raise ValueError(f"{type(self).__name__}._poison must return new arrays, not views of its inputs")
        if x_out.shape != x.shape or y_out.shape != y.shape:
            raise ValueError(f"{type(self).__name__}._poison must keep the shapes {x.shape} and {y.shape}")
        return x_out.astype(x.dtype, copy=False), y_out.astype(y.dtype, copy=False)

    def _corrupt(self, message: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Identity: the honest message (a copy)."""
        return message.clone()

    def _poison(
        self, x: np.ndarray, y: np.ndarray, num_classes: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Identity: the honest data (copies)."""
        return x.copy(), y.copy()


class UpdateAttack(Attack):
    """An attack on the messages: implement ``_corrupt(message, generator) -> tensor``.

    ``message`` arrives checked and detached; return a tensor of the same shape (it is cast to the
    message's dtype and device). Use vectorised torch ops and draw random numbers with
    :func:`randn_like` so that a seeded generator gives reproducible results.
    """

    kind: ClassVar[str] = "update"

    def _corrupt(self, message: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement _corrupt(message, generator)")


class DataAttack(Attack):
    """An attack on the local data: implement ``_poison(x, y, num_classes, rng) -> (x, y)``.

    The arguments arrive checked; return *new* arrays of the same shapes (never modify ``x`` or ``y``).
    """

    kind: ClassVar[str] = "data"

    def _poison(
        self, x: np.ndarray, y: np.ndarray, num_classes: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError(f"{type(self).__name__} must implement _poison(x, y, num_classes, rng)")


def randn_like(message: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal draws shaped like ``message``, on its device and dtype.

    The draws are made on the generator's device in float32 (float64 for float64 messages), then
    moved, so one seeded generator gives the same numbers whatever the message's device.

    Examples
    --------
    >>> m = torch.zeros(3, dtype=torch.float64)
    >>> a = randn_like(m, torch.Generator().manual_seed(0))
    >>> b = randn_like(m, torch.Generator().manual_seed(0))
    >>> bool(torch.equal(a, b)), a.dtype
    (True, torch.float64)
    """
    work = torch.float64 if message.dtype == torch.float64 else torch.float32
    where = generator.device if generator is not None else message.device
    z = torch.randn(message.shape, generator=generator, dtype=work, device=where)
    return z.to(device=message.device, dtype=message.dtype)
