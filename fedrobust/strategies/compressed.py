"""Server side of the compressed protocols: name the compressor, decode untrusted payloads.

A strategy with this mixin sends ``compressor`` and ``compressor-params`` (the run-config keys) in
every round's config, and reads each reply as the compressor's payload: the arrays are matched to
the compressor's keys (:func:`~fedrobust.compression.payload_from_ndarrays`) and decoded
(:meth:`~fedrobust.compression.Compressor.decode`, which checks every field). A malformed payload
(wrong keys, dtypes, lengths, indices out of range, NaN) is rejected with the decoder's reason
and counted in ``rejected_clients``, never raised. ``bytes_up`` is the payloads' real size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from flwr.common import Scalar

from ..compression import Compressor, payload_from_ndarrays, payload_to_ndarrays
from ..core.rng import stream_seed

if TYPE_CHECKING:  # config imports the libraries, never the other way round
    from ..config import RunConfig


__all__ = ["CompressedStrategy", "run_compressor"]


def run_compressor(cfg: RunConfig) -> Compressor:
    """The compressor of a run whose ``compressor`` is resolved (not ``auto``), with ``compressor-params``.

    Examples
    --------
    >>> from fedrobust.config import RunConfig
    >>> run_compressor(RunConfig(compressor="top-k", compressor_params="ratio=0.01"))
    TopK(k=None, ratio=0.01)
    """
    from ..clients.compressed import compressor_from_config

    return compressor_from_config(cfg.to_dict())


class CompressedStrategy:
    """Mixin for a :class:`~fedrobust.strategies.VectorStrategy` whose clients send compressed payloads
    (the server half of a compressed protocol; the client half is
    :class:`~fedrobust.clients.compressed.CompressingClient`).

    Put it before the strategy class in the bases; it builds the run's compressor on construction
    (so bad ``compressor-params`` fail at once). ``compressor = auto`` becomes the class's
    ``default_compressor`` (also in ``self.cfg``, so the results record the compressor used).
    """

    compressor: Compressor
    default_compressor: ClassVar[str] = "identity"

    def __init__(self, cfg: RunConfig, x0: torch.Tensor, shapes: Sequence[tuple[int, ...]], **kwargs: Any) -> None:
        cfg = cfg.replace(compressor=self.compressor_name(cfg))  # auto -> the class's default
        super().__init__(cfg, x0, shapes, **kwargs)  # type: ignore[call-arg]
        self.compressor = run_compressor(cfg)

    def fit_config(self, server_round: int) -> dict[str, Scalar]:
        """The base config plus the compressor the clients must use."""
        config = super().fit_config(server_round)  # type: ignore[misc]
        config["compressor"] = self.cfg.compressor  # type: ignore[attr-defined]
        config["compressor-params"] = self.cfg.compressor_params  # type: ignore[attr-defined]
        return config

    def read_reply(self, arrays: list[np.ndarray], out: np.ndarray) -> str | None:
        """Decode the payload into ``out``; when it does not decode, the reason (naming the
        decoder's complaint), and the reply is rejected."""
        try:
            payload = payload_from_ndarrays(self.compressor, arrays)
            vec = self.compressor.decode(payload, out.shape[0])
        except Exception as err:  # noqa: BLE001 - an untrusted payload that fails to decode is a bad reply
            return f"{self.compressor.name} payload does not decode: {err}"
        out[:] = vec.numpy()
        return None

    def encode_reply(
        self, row: torch.Tensor, metrics: dict[str, Scalar], server_round: int, partition: int
    ) -> tuple[list[np.ndarray], dict[str, Scalar]]:
        """``row`` compressed by the run's compressor (its draws from the ``adversary-compression``
        stream of the partition and round), as the payload's arrays; the metrics unchanged."""
        seed = stream_seed("adversary-compression", self.cfg.seed, partition, server_round)  # type: ignore[attr-defined]
        return payload_to_ndarrays(self.compressor.encode(row, seed=seed)), metrics
