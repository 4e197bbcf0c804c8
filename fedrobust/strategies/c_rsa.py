"""C-RSA and RSA: ℓ1-penalised model aggregation with ternary messages.

From He, Zhu and Ling (2023), "C-RSA: Byzantine-robust and communication-efficient distributed learning in the
non-convex and non-IID regime" (Signal Processing).

The server is the paper's master: it keeps x₀ (``self.x``); every worker keeps its own model x_k in its
``Context.state`` (:class:`~fedrobust.clients.RSAClient`, protocol ``rsa``). Each round, with
α = ``lr``, λ = ``lam`` and μ = ``weight-decay``:

1. the master picks ω, l = max(1, round(``coord-ratio`` · d)) coordinates
   (:func:`~fedrobust.optim.draw_coordinates`): ``coord-method = rand`` draws them from a
   per-round seed (derived from ``seed`` and the round) and sends a ``rand-k`` payload, the seed
   (8 bytes) plus x₀ on ω (4·l bytes); ``top`` takes the l largest |x₀| and sends a ``top-k``
   payload (indices and values, 8·l bytes). A worker taking part for the first time also receives
   the whole x₀ (the model's arrays, before the payload) and starts x_k from it (He et al., 2023: all models
   start at x₀). ``bytes_down`` counts exactly these arrays;
2. every worker replies sign(C(x₀) − x_k) on ω, l ternary values packed as bit-planes
   (:func:`~fedrobust.optim.pack_signs`: ceil(l/8) bytes, twice that when a value is 0), and
   updates x_k; a reply that does not decode to l ternary values is rejected;
3. the master steps x₀ ← x₀ − α[μ·x₀ + λ·Σ_k P_ω(m_k)] (:func:`~fedrobust.optim.master_update`).

``rsa`` is the same with ω = all coordinates: the master sends the model every round and the
workers reply d ternary values (``coord-ratio`` and ``coord-method`` are ignored). Both ignore
``compressor``: their messages are ternary by design. Whatever a worker sends, it moves each
coordinate of x₀ by at most αλ per round. Rounds record ``coord_count`` (l).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from flwr.common import FitRes, Scalar
from flwr.server.client_proxy import ClientProxy

from ..core.rng import stream_seed
from ..compression import Sign, get_compressor, payload_from_ndarrays, payload_to_ndarrays
from ..core.ndarrays import to_ndarrays
from ..optim import draw_coordinates, master_update, pack_signs_of, unpack_signs
from .base import VectorStrategy

if TYPE_CHECKING:  # config imports the libraries, never the other way round
    from ..config import RunConfig


__all__ = ["CRSA", "RSA", "coordinate_count", "coordinate_seed"]

_SIGN = Sign()


def coordinate_count(ratio: float, d: int) -> int:
    """l = max(1, round(ratio · d)) coordinates per round, at most d.

    Examples
    --------
    >>> coordinate_count(0.5, 7), coordinate_count(0.001, 10), coordinate_count(1.0, 5)
    (4, 1, 5)
    """
    return max(1, min(d, round(ratio * d)))


def coordinate_seed(seed: int, server_round: int) -> int:
    """The seed of a round's ``rand`` coordinates (63 bits), derived from the run seed and the round.

    Examples
    --------
    >>> coordinate_seed(0, 1) == coordinate_seed(0, 1) != coordinate_seed(0, 2)
    True
    """
    return stream_seed("coordinates", seed, server_round)


class CRSA(VectorStrategy):
    """The master of He et al. (2023) on the ``rsa`` protocol (see the module docstring).

    Attributes
    ----------
    l : int
        Coordinates exchanged per round (d for RSA).
    method : str
        ``"rand"``, ``"top"`` or ``"all"`` (RSA).
    initialised : set of int
        Partition ids that have received the whole x₀ (their workers hold an x_k).
    """

    name: ClassVar[str] = "c-rsa"
    no_pre_aggregation: ClassVar[str] = (
        "each row is one worker's ternary sign vector of the l1 penalty, whose bound per worker is the robustness; "
        "a mix of signs is no worker's penalty"
    )
    protocol: ClassVar[str] = "rsa"
    all_coordinates: ClassVar[bool] = False

    @classmethod
    def reply_length_for(cls, cfg: RunConfig, d: int) -> int:
        """l coordinates per reply (d for RSA)."""
        return d if cls.all_coordinates else coordinate_count(cfg.coord_ratio, d)

    def __init__(self, cfg: RunConfig, x0: torch.Tensor, shapes: Sequence[tuple[int, ...]], **kwargs: Any) -> None:
        super().__init__(cfg, x0, shapes, **kwargs)
        d = self.x.numel()
        self.l = d if self.all_coordinates else coordinate_count(cfg.coord_ratio, d)
        self.method = "all" if self.all_coordinates else cfg.coord_method
        self.initialised: set[int] = set()

    # ----------------------------------------------------------------------------- messages
    def coordinates(self, server_round: int) -> torch.Tensor | None:
        """ω of a round on the server's device (None: all coordinates). ``top`` reads the current x₀,
        which does not change between sending and aggregating a round."""
        if self.method == "all":
            return None
        seed = coordinate_seed(self.cfg.seed, server_round) if self.method == "rand" else None
        return draw_coordinates(self.x.numel(), self.l, seed=seed, method=self.method, x0=self.x).to(self.device)

    def fit_config(self, server_round: int) -> dict[str, Scalar]:
        """The base config (minus ``weight-decay``: μ is the master's) plus ``lam``, ``coord-method``,
        ``coord-count`` and ``with-model`` (whether the arrays start with the whole x₀)."""
        config = super().fit_config(server_round)
        config.pop("weight-decay", None)
        config.update({"lam": self.cfg.lam, "coord-method": self.method, "coord-count": self.l, "with-model": False})
        return config

    def fit_messages(
        self, server_round: int, partitions: list[int]
    ) -> list[tuple[list[np.ndarray], dict[str, Scalar]]]:
        """x₀ on ω as a ``rand-k`` / ``top-k`` payload; the whole x₀ before it for first-time workers
        (and always for RSA)."""
        config = self.fit_config(server_round)
        model = to_ndarrays(self.x, self.shapes)
        full_config = {**config, "with-model": True}
        if self.method == "all":
            return [(model, full_config)] * len(partitions)
        if self.method == "rand":
            payload = get_compressor("rand-k", k=self.l).encode(self.x, seed=coordinate_seed(self.cfg.seed, server_round))
        else:
            payload = get_compressor("top-k", k=self.l).encode(self.x)
        compact = payload_to_ndarrays(payload)
        first = (model + compact, full_config)
        later = (compact, config)
        return [later if p in self.initialised else first for p in partitions]

    def reply_length(self, server_round: int) -> int:
        """l: one ternary value per exchanged coordinate."""
        return self.l

    def read_reply(self, arrays: list[np.ndarray], out: np.ndarray) -> str | None:
        """Decode the packed ternary message of l values into ``out``; why not when it is malformed."""
        try:
            signs = unpack_signs(payload_from_ndarrays(_SIGN, arrays), out.shape[0])
        except Exception:  # noqa: BLE001 - an untrusted payload that fails to decode is a bad reply
            return "the payload does not decode"
        out[:] = signs.numpy()
        return None

    def encode_reply(
        self, row: torch.Tensor, metrics: dict[str, Scalar], server_round: int, partition: int
    ) -> tuple[list[np.ndarray], dict[str, Scalar]]:
        """sign(``row``) packed as the ternary message of the round's l coordinates: a worker of
        C-RSA can only send signs, so a crafted vector reaches the master as its signs."""
        return payload_to_ndarrays(pack_signs_of(row)), metrics

    def aggregate_preview(self, rows: torch.Tensor, partitions: list[int], metrics: list[dict[str, Scalar]]) -> torch.Tensor:
        """The mean of the ternary rows (the master moves ω by −αλ·n times it)."""
        return rows.mean(dim=0)

    # ------------------------------------------------------------------------------- server
    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Any, dict[str, Scalar]]:
        """The base loop; every client that replied now holds an x_k (it got the whole x₀ if it was new)."""
        out = super().aggregate_fit(server_round, results, failures)
        self.initialised.update(self._reply_partition(proxy, res, i) for i, (proxy, res) in enumerate(results))
        return out

    def step(self, updates: torch.Tensor, weights: torch.Tensor) -> dict[str, Scalar] | None:
        """x₀ ← x₀ − α[μ·x₀ + λ·Σ_k P_ω(m_k)] over the accepted messages (n, l)."""
        c = self.cfg
        grad0 = self.x * c.weight_decay if c.weight_decay else None
        omega = self.coordinates(self.server_round)
        self.x.copy_(master_update(self.x, grad0, updates, omega, alpha=self.lr, lam=c.lam))
        return {"coord_count": self.l}

    # -------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """``x``, ``round`` and ``initialised`` (sorted partition ids)."""
        return {**super().state_dict(), "initialised": sorted(self.initialised)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output."""
        super().load_state_dict(state)
        self.initialised = {int(p) for p in state.get("initialised", ())}


class RSA(CRSA):
    """RSA (the uncompressed baseline of He et al., 2023): C-RSA with ω = all coordinates."""

    name: ClassVar[str] = "rsa"
    all_coordinates: ClassVar[bool] = True
