"""C-RSA's CIFAR-10 CNN: 2 convolutional + 3 fully connected layers, 368,052 parameters.

The model of He, Zhu and Ling (2023), "C-RSA: Byzantine-robust and communication-efficient distributed
learning in the non-convex and non-IID regime", Sec. 5.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import FedModel, check_image_shape


class CifarCNN(FedModel):
    """LeNet-5 layout: two 5x5 convolutions (no padding) each followed by ReLU and 2x2 max-pooling, then
    three fully connected layers with ReLU between them.

    He et al. (2023) give only the layer types and the total (368,052 parameters), not the widths. The
    defaults here (16 and 32 channels, hidden widths 350 and 204) are our choice and reproduce that total
    exactly on ``(3, 32, 32)`` inputs with 10 classes.

    Examples
    --------
    >>> model = CifarCNN((3, 32, 32), 10)
    >>> sum(p.numel() for p in model.parameters())
    368052
    >>> model(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(self, input_shape=(3, 32, 32), num_classes: int = 10, channels=(16, 32), hidden=(350, 204)):
        super().__init__()
        c, h, w = check_image_shape(input_shape, "cifar-cnn", min_size=16)
        c1, c2 = channels
        h1, h2 = hidden
        self.conv1 = nn.Conv2d(c, c1, kernel_size=5)
        self.conv2 = nn.Conv2d(c1, c2, kernel_size=5)
        side_h, side_w = ((h - 4) // 2 - 4) // 2, ((w - 4) // 2 - 4) // 2
        self.fc1 = nn.Linear(c2 * side_h * side_w, h1)
        self.fc2 = nn.Linear(h1, h2)
        self.fc3 = nn.Linear(h2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        x = F.relu(self.fc2(x))
        return self.fc3(x)
