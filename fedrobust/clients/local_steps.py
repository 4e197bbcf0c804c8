"""The local-steps protocol: run H local SGD steps from the received model, return Δ = x − y.

Used by FedAvg (and later FL-BGMD). ``local-steps`` (H), ``lr`` and ``batch-size`` come with each
round's config from the server.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from flwr.common import Scalar

from ..models import flat_params
from .base import HonestClient

__all__ = ["LocalStepsClient"]


class LocalStepsClient(HonestClient):
    """Runs ``local-steps`` SGD steps y ← y − lr·(g + weight-decay·y) on seeded minibatches, sends x − y."""

    protocol: ClassVar[str] = "local-steps"

    def fit(
        self, parameters: list[np.ndarray], config: dict[str, Scalar]
    ) -> tuple[list[np.ndarray], int, dict[str, Scalar]]:
        """Load x, train H steps locally, return the model difference Δ = x − y_H."""
        x = self.load(parameters)
        weight_decay = float(config.get("weight-decay", 0.0))
        optimizer = torch.optim.SGD(self.model.parameters(), lr=float(config["lr"]), weight_decay=weight_decay)
        steps = int(config["local-steps"])
        total = 0.0
        for xb, yb in self.minibatches(config, steps=steps):
            optimizer.zero_grad(set_to_none=False)
            loss = self.batch_loss(xb, yb)
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
        delta = x - flat_params(self.model)
        return self.reply(delta, len(self.x), {"loss": total / steps})
