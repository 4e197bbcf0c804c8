"""Compressed protocols: the gradient and local-steps messages sent as a compressor's compact payload.

- ``"compressed-gradient"`` (:class:`CompressedGradientClient`, QBGMD): sends Q(g).
- ``"compressed-local-steps"`` (:class:`CompressedLocalStepsClient`, FL-BGMD): sends Q(x − y_H).

The server names the compressor in every round's config (``compressor``, ``compressor-params``,
the run-config keys), so client and server always agree on the payload format. The payload's
arrays (:func:`~fedrobust.compression.payload_to_ndarrays`, in the compressor's key order) are the
reply; ``bytes_sent`` is their real size. Random compressors draw from a generator seeded by
(``seed``, partition id, ``server-round``) on a stream of its own (:func:`compression_generator`).
A Byzantine client's update attack replaces the flat message before it is compressed, so its
reply has the same format.

Examples
--------
>>> from fedrobust.models import get_model
>>> client = CompressedGradientClient(get_model("logistic", input_shape=(3,), num_classes=2),
...                                   torch.ones(4, 3), torch.tensor([0, 1, 0, 1]), partition_id=0)
>>> config = {"seed": 0, "server-round": 1, "batch-size": 4, "compressor": "top-k", "compressor-params": "k=2"}
>>> arrays, n, metrics = client.fit(client.get_parameters({}), config)
>>> [a.dtype.name for a in arrays], metrics["bytes_sent"]
(['int32', 'float32'], 16)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from flwr.common import Scalar

from ..core.rng import stream_generator
from ..compression import Compressor, get_compressor, payload_to_ndarrays
from ..core.params import parse_params
from .gradient import GradientClient
from .local_steps import LocalStepsClient

__all__ = [
    "CompressedGradientClient",
    "CompressedLocalStepsClient",
    "compressor_from_config",
    "compression_generator",
]


def compressor_from_config(config: Mapping[str, Any]) -> Compressor:
    """The compressor a round's config (or a run config as a mapping) names.

    Examples
    --------
    >>> compressor_from_config({"compressor": "rand-k", "compressor-params": "ratio=0.1"})
    RandK(k=None, ratio=0.1, rescale=False)
    >>> compressor_from_config({})
    Identity()
    """
    name = str(config.get("compressor", "identity"))
    params = parse_params(str(config.get("compressor-params", "")), "compressor-params")
    return get_compressor(name, **params)


def compression_generator(seed: int, partition_id: int, server_round: int) -> torch.Generator:
    """A CPU torch Generator seeded from (seed, partition id, round) for a compressor's draws.

    Examples
    --------
    >>> a = torch.rand(2, generator=compression_generator(0, 1, 2))
    >>> bool(torch.equal(a, torch.rand(2, generator=compression_generator(0, 1, 2))))
    True
    """
    return stream_generator("compression", seed, partition_id, server_round)


class CompressingClient:
    """Mixin over an honest protocol client: read the compressor from the round's config and send
    the payload's arrays in place of the model's arrays (the client half of a compressed protocol;
    the server half is :class:`~fedrobust.strategies.compressed.CompressedStrategy`)."""

    compressor: Compressor | None = None
    _generator: torch.Generator | None = None

    def fit(
        self, parameters: list[np.ndarray], config: dict[str, Scalar]
    ) -> tuple[list[np.ndarray], int, dict[str, Scalar]]:
        """The protocol's fit, with its message compressed by the round's compressor."""
        self.compressor = compressor_from_config(config)
        self._generator = compression_generator(int(config["seed"]), self.partition_id, int(config["server-round"]))
        return super().fit(parameters, config)  # type: ignore[misc]

    def encode(self, vec: torch.Tensor) -> list[np.ndarray]:
        """The compressor's payload of ``vec`` as the list of its arrays (its fixed key order)."""
        if self.compressor is None:
            raise RuntimeError("encode is called from fit, after the round's config named the compressor")
        return payload_to_ndarrays(self.compressor.encode(vec, generator=self._generator))


class CompressedGradientClient(CompressingClient, GradientClient):
    """Sends Q(g): the compressed minibatch gradient (plus weight decay) at the received model."""

    protocol: ClassVar[str] = "compressed-gradient"


class CompressedLocalStepsClient(CompressingClient, LocalStepsClient):
    """Runs ``local-steps`` SGD steps and sends Q(x − y_H), the compressed model difference."""

    protocol: ClassVar[str] = "compressed-local-steps"
