"""The ``compressed-gradient-norm`` protocol of ``norm-threshold``.

Algorithm 1 of Ghosh, Maity, Kadhe, Mazumdar and Ramchandran (2021), "Communication-Efficient and
Byzantine-Robust Distributed Learning with Error Feedback".

Like ``compressed-gradient`` (the client sends Q(g) with the round's compressor), plus the norm
‖g‖ of the uncompressed message in the reply's metrics as ``grad_norm``, which the server ranks
clients by under ``norm-option = 1``. The norm is computed from the message actually sent: a
Byzantine client's update attack replaces g first, so it reports the norm of its corrupted
gradient (it adheres to the protocol; a client that lies about its norm is not modelled).

Examples
--------
>>> from fedrobust.models import get_model
>>> client = CompressedGradientNormClient(get_model("logistic", input_shape=(3,), num_classes=2, bias=False),
...                                       torch.eye(3)[[0, 1, 1, 2]], torch.tensor([0, 1, 1, 0]), partition_id=0)
>>> config = {"seed": 0, "server-round": 1, "batch-size": 4, "compressor": "scaled-sign"}
>>> arrays, n, metrics = client.fit(client.get_parameters({}), config)   # g = (0.125, -0.25, 0.125)
>>> round(metrics["grad_norm"], 4), metrics["bytes_sent"]   # one byte of signs and a float32 scale
(0.3062, 5)
"""

from __future__ import annotations

from typing import ClassVar

import torch
from flwr.common import Scalar

from .compressed import CompressedGradientClient

__all__ = ["CompressedGradientNormClient"]


class CompressedGradientNormClient(CompressedGradientClient):
    """Sends Q(g) and reports ``grad_norm`` = ‖g‖ (the uncompressed message) in its metrics."""

    protocol: ClassVar[str] = "compressed-gradient-norm"

    def message_metrics(self, vec: torch.Tensor) -> dict[str, Scalar]:
        """``{"grad_norm": ‖vec‖}``, the norm of the message before compression."""
        return {"grad_norm": float(torch.linalg.vector_norm(vec.detach().to(torch.float64)))}
