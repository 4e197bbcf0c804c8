"""The ``error-feedback`` protocol of ``norm-threshold-ef``.

Algorithm 2 of Ghosh, Maity, Kadhe, Mazumdar and Ramchandran (2021), "Communication-Efficient and
Byzantine-Robust Distributed Learning with Error Feedback".

The client computes its minibatch gradient g (plus ``weight-decay``·x, as every gradient client),
forms p = lr·g + e with its error memory e, sends Q(p) with the round's compressor and keeps
e ← p − Q(p) (:func:`~fedrobust.optim.error_feedback_step`). e lives in ``Context.state`` (an
``ArrayRecord`` under :data:`MEMORY_KEY`, float32, zeros before the first round), so it survives
between rounds whichever process serves the client.

A Byzantine client's update attack replaces g (the flat message) before the error-feedback step,
as in the paper's experiments (Byzantine gradient + noise, then the protocol), so its reply is a
compressed payload like every other one.

Examples
--------
>>> from fedrobust.models import get_model
>>> client = ErrorFeedbackClient(get_model("logistic", input_shape=(3,), num_classes=2, bias=False),
...                              torch.eye(3)[[0, 1, 1, 2]], torch.tensor([0, 1, 1, 0]), partition_id=0)
>>> config = {"seed": 0, "server-round": 1, "batch-size": 4, "lr": 1.0, "compressor": "top-k",
...           "compressor-params": "k=1"}
>>> arrays, n, metrics = client.fit(client.get_parameters({}), config)   # g = (0.125, -0.25, 0.125)
>>> client.error_memory().tolist()   # what top-1 dropped
[0.125, 0.0, 0.125]
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from flwr.common import Scalar

from ..compression import Compressor, payload_to_ndarrays
from ..optim import error_feedback_step
from .compressed import compression_generator, compressor_from_config
from .gradient import GradientClient

__all__ = ["ErrorFeedbackClient", "MEMORY_KEY"]

MEMORY_KEY = "fedrobust-error-memory"
"""The ``Context.state`` key of the client's error memory e."""


class ErrorFeedbackClient(GradientClient):
    """Sends Q(lr·g + e) and keeps e ← lr·g + e − Q(lr·g + e) in ``Context.state``."""

    protocol: ClassVar[str] = "error-feedback"

    compressor: Compressor | None = None
    _lr: float = 0.0
    _seed: int = 0

    def fit(
        self, parameters: list[np.ndarray], config: dict[str, Scalar]
    ) -> tuple[list[np.ndarray], int, dict[str, Scalar]]:
        """The gradient client's fit, with the message sent through the error-feedback step."""
        self.compressor = compressor_from_config(config)
        self._lr = float(config["lr"])
        g = compression_generator(int(config["seed"]), self.partition_id, int(config["server-round"]))
        self._seed = int(torch.randint(2**62, (1,), generator=g))
        return super().fit(parameters, config)

    def error_memory(self) -> torch.Tensor | None:
        """The error memory e (float32 on the client's device), or None before the first round."""
        return self.state_vector(MEMORY_KEY, "e")

    def encode(self, vec: torch.Tensor) -> list[np.ndarray]:
        """One error-feedback step on ``vec`` (the gradient): send Q(p), store the new memory."""
        if self.compressor is None:
            raise RuntimeError("encode is called from fit, after the round's config named the compressor")
        payload, _, memory = error_feedback_step(vec, self.error_memory(), self._lr, self.compressor, seed=self._seed)
        self.keep_state_vector(MEMORY_KEY, "e", memory)
        return payload_to_ndarrays(payload)
