"""The gradient protocol: return one minibatch stochastic gradient at the received model.

Used by the strategies that aggregate gradients (mean-SGD, BGMD, GMD, CMD, trimmed mean, Krum,
norm-thresholding, ...). With ``client-momentum`` β > 0 the client sends its worker momentum
m ← β·m + (1 − β)·g instead of g (Karimireddy, He and Jaggi, "Learning from History for Byzantine
Robust Optimization", 2021): averaging over rounds shrinks the honest messages' noise, which a
robust aggregator cannot tell from an attacker's pull. m lives in ``Context.state``
(:data:`MOMENTUM_KEY`) and starts at the first gradient; a Byzantine client's update attack
corrupts m, the message it would send.

Examples
--------
>>> from fedrobust.models import get_model
>>> client = GradientClient(get_model("logistic", input_shape=(3,), num_classes=2, bias=False),
...                         torch.eye(3)[[0, 1, 1, 2]], torch.tensor([0, 1, 1, 0]), partition_id=0)
>>> [round(v, 4) for v in client.momentum_step(torch.tensor([2.0, 0.0, 0.0]), 0.5).tolist()]  # m = g
[2.0, 0.0, 0.0]
>>> [round(v, 4) for v in client.momentum_step(torch.tensor([0.0, 4.0, 0.0]), 0.5).tolist()]
[1.0, 2.0, 0.0]
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from flwr.common import Scalar

from ..models import flat_grad
from .base import HonestClient

__all__ = ["GradientClient", "MOMENTUM_KEY"]

MOMENTUM_KEY = "fedrobust-momentum"
"""The ``Context.state`` key of the client's worker momentum m."""


class GradientClient(HonestClient):
    """Sends g = ∇ loss(x; minibatch) + weight-decay·x for one seeded minibatch of ``batch-size`` examples."""

    protocol: ClassVar[str] = "gradient"

    def fit(
        self, parameters: list[np.ndarray], config: dict[str, Scalar]
    ) -> tuple[list[np.ndarray], int, dict[str, Scalar]]:
        """Load the model, compute one minibatch gradient (plus ``weight-decay``·x) and return it."""
        x = self.load(parameters)
        (xb, yb), = self.minibatches(config, steps=1)
        self.model.zero_grad(set_to_none=False)
        loss = self.batch_loss(xb, yb)
        loss.backward()
        grad = flat_grad(self.model)
        weight_decay = float(config.get("weight-decay", 0.0))
        if weight_decay:
            grad.add_(x, alpha=weight_decay)
        momentum = float(config.get("client-momentum", 0.0))
        if momentum:
            grad = self.momentum_step(grad, momentum)
        return self.reply(grad, len(xb), {"loss": float(loss.detach())})

    def momentum_step(self, grad: torch.Tensor, beta: float) -> torch.Tensor:
        """m ← β·m + (1 − β)·``grad`` (m = ``grad`` when the client has none yet); store and return m."""
        m = self.state_vector(MOMENTUM_KEY, "m")
        m = grad.clone() if m is None else m.mul_(beta).add_(grad, alpha=1.0 - beta)
        self.keep_state_vector(MOMENTUM_KEY, "m", m)
        return m
