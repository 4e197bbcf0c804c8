"""The gradient protocol: return one minibatch stochastic gradient at the received model.

Used by the strategies that aggregate gradients (mean-SGD; later BGMD, GMD, CMD, norm-thresholding).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from flwr.common import Scalar

from ..models import flat_grad
from .base import HonestClient

__all__ = ["GradientClient"]


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
        return self.reply(grad, len(xb), {"loss": float(loss.detach())})
