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
from typing import Any, ClassVar

import numpy as np
import torch
from flwr.common import Scalar

from ..compression import Compressor, payload_from_ndarrays
from ..config import RunConfig

__all__ = ["CompressedStrategy", "run_compressor", "resolve_compressor"]


def run_compressor(cfg: RunConfig, default: str = "identity") -> Compressor:
    """The compressor of a run (``compressor`` with ``compressor-params``; ``auto`` means ``default``).

    Examples
    --------
    >>> run_compressor(RunConfig(compressor="top-k", compressor_params="ratio=0.01"))
    TopK(k=None, ratio=0.01)
    >>> run_compressor(RunConfig(), default="scaled-sign")
    ScaledSign()
    """
    from ..clients.compressed import compressor_from_config

    return compressor_from_config({**cfg.to_dict(), "compressor": resolve_compressor(cfg, default).compressor})


def resolve_compressor(cfg: RunConfig, default: str) -> RunConfig:
    """``cfg`` with ``compressor = auto`` replaced by ``default`` (the strategy's own default).

    Examples
    --------
    >>> resolve_compressor(RunConfig(), "sign").compressor, resolve_compressor(RunConfig(compressor="qsgd"), "sign").compressor
    ('sign', 'qsgd')
    """
    return cfg.replace(compressor=default) if cfg.compressor == "auto" else cfg


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
        cfg = resolve_compressor(cfg, self.default_compressor)
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
