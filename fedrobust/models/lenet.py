"""BGMD's LeNet-style CNN (about 1.16M parameters on 28x28 inputs).

The model of Acharya, Hashemi, Jain, Sanghavi, Dhillon and Topcu (2022), "Robust Training in High Dimensions
via Block Coordinate Geometric Median Descent", Sec. 7.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import FedModel, check_image_shape


class LeNet(FedModel):
    """Two 5x5 convolutions (64 channels each, no padding), each followed by 2x2 max-pooling and ReLU, then
    a 1024-unit fully connected layer with ReLU and dropout, then the class logits.

    Acharya et al. (2022) state only "LeNet-style, 1.16M parameters"; these layer sizes follow the BGMD
    authors' released code, and on ``(1, 28, 28)`` inputs with 10 classes give 1,163,978 parameters.
    Inputs must be at least 16x16.

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, H, W)``.
    num_classes : int
        Number of output logits.
    hidden : int
        Width of the fully connected hidden layer.
    dropout : float
        Dropout probability after the hidden layer (active in ``train()`` mode only).

    Examples
    --------
    >>> model = LeNet((1, 28, 28), 10)
    >>> sum(p.numel() for p in model.parameters())
    1163978
    >>> model(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(self, input_shape=(1, 28, 28), num_classes: int = 10, hidden: int = 1024, dropout: float = 0.5):
        super().__init__()
        c, h, w = check_image_shape(input_shape, "lenet", min_size=16)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.conv1 = nn.Conv2d(c, 64, kernel_size=5)
        self.conv2 = nn.Conv2d(64, 64, kernel_size=5)
        side_h, side_w = ((h - 4) // 2 - 4) // 2, ((w - 4) // 2 - 4) // 2
        self.fc1 = nn.Linear(64 * side_h * side_w, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        x = F.relu(self.fc1(x.flatten(1)))
        x = F.dropout(x, p=self.dropout, training=self.training)
        return self.fc2(x)
