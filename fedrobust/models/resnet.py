"""ResNet-18, CIFAR variant (3x3 stem, no max-pool), in plain torch.

Normalisation layers: BatchNorm keeps running statistics in buffers, which are not parameters, so they are
neither averaged nor attacked by the server and drift per client under non-IID data; its batch statistics
also make a client's gradient depend on the whole minibatch. The default here is therefore GroupNorm with
2 groups (as in Hsieh, Phanishayee, Mutlu and Gibbons (2020), "The Non-IID Data Quagmire of Decentralized
Machine Learning"), which has no buffers and the same parameters as BatchNorm (11,173,962 for 10 classes).
``norm="batch"`` gives the usual BatchNorm network, ``norm="none"`` drops normalisation (convolutions then
get biases).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import FedModel, check_image_shape

NORMS = ("group", "batch", "none")


def _norm(kind: str, channels: int, groups: int) -> nn.Module:
    if kind == "group":
        return nn.GroupNorm(groups, channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.Identity()


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (1x1 projection when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int, norm: str, groups: int):
        super().__init__()
        bias = norm == "none"
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=bias)
        self.n1 = _norm(norm, cout, groups)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=bias)
        self.n2 = _norm(norm, cout, groups)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=bias), _norm(norm, cout, groups))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.n1(self.conv1(x)))
        out = self.n2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(FedModel):
    """ResNet-18 for small images: 3x3 stem (64 channels), four stages of two basic blocks (64, 128, 256,
    512 channels), global average pooling, a linear classifier.

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, H, W)``; CIFAR-10 is ``(3, 32, 32)``.
    num_classes : int
        Number of output logits.
    norm : {"group", "batch", "none"}
        Normalisation layers (see the module docstring; GroupNorm is the default).
    groups : int
        Number of groups of GroupNorm (must divide 64).

    Examples
    --------
    >>> model = ResNet18((3, 32, 32), 10)
    >>> sum(p.numel() for p in model.parameters())
    11173962
    >>> model(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(self, input_shape=(3, 32, 32), num_classes: int = 10, norm: str = "group", groups: int = 2):
        super().__init__()
        c, _, _ = check_image_shape(input_shape, "resnet18")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if norm == "group" and (not isinstance(groups, int) or groups < 1 or 64 % groups):
            raise ValueError(f"groups must be a positive int dividing 64, got {groups!r}")
        self.stem = nn.Conv2d(c, 64, 3, stride=1, padding=1, bias=norm == "none")
        self.stem_norm = _norm(norm, 64, groups)
        blocks, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [BasicBlock(cin, cout, stride, norm, groups), BasicBlock(cout, cout, 1, norm, groups)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem_norm(self.stem(x)))
        x = self.blocks(x)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))
