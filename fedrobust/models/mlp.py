"""One-hidden-layer ReLU perceptron (1000 hidden units on MNIST).

The MNIST model of Ghosh, Maity, Kadhe, Mazumdar and Ramchandran (2021), "Communication-Efficient and
Byzantine-Robust Distributed Learning with Error Feedback", Sec. 8.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import FedModel, flat_features


class MLP(FedModel):
    """Flatten, ``Linear(F, hidden)``, ReLU, ``Linear(hidden, num_classes)``.

    Parameter count: ``(F * hidden + hidden) + (hidden * C + C)``.

    Examples
    --------
    >>> model = MLP((1, 28, 28), 10)
    >>> sum(p.numel() for p in model.parameters())
    795010
    >>> model(torch.zeros(3, 1, 28, 28)).shape
    torch.Size([3, 10])
    """

    def __init__(self, input_shape=(784,), num_classes: int = 10, hidden: int = 1000):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(flat_features(input_shape), hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
