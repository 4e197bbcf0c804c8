"""Linear models of FED-CURE: logistic regression and the non-convex robust regression.

Both are used by Ghosh, Maity and Mazumdar (2023), "FED-CURE: A Robust Federated Learning Algorithm with Cubic
Regularized Newton".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import FedModel, flat_features


class _ZeroLinear(FedModel):
    """One linear layer on the flattened input, weights (and bias) starting at zero."""

    def __init__(self, input_shape, outputs: int, bias: bool):
        super().__init__()
        self.linear = nn.Linear(flat_features(input_shape), outputs, bias=bias)
        nn.init.zeros_(self.linear.weight)
        if bias:
            nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


class Logistic(_ZeroLinear):
    """Linear model with the logistic loss.

    With ``num_classes == 2``: one output logit, binary cross-entropy with logits against 0/1 labels,
    prediction ``out > 0``. With more classes: one logit per class, cross-entropy, arg-max (multinomial).
    Inputs are flattened; weights start at zero. ``bias=False`` gives exactly ``d`` parameters (123 on a9a,
    300 on w8a, the data sets of Ghosh et al., 2023).

    Examples
    --------
    >>> model = Logistic((123,), 2)
    >>> out = model(torch.zeros(4, 123))
    >>> out.shape, round(model.loss(out, torch.tensor([0, 1, 0, 1])).item(), 4)
    (torch.Size([4, 1]), 0.6931)
    """

    def __init__(self, input_shape=(123,), num_classes: int = 2, bias: bool = True):
        super().__init__(input_shape, 1 if num_classes == 2 else num_classes, bias)
        self.binary = num_classes == 2

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.binary:
            return F.binary_cross_entropy_with_logits(out.reshape(-1), y.reshape(-1).to(out.dtype))
        return super().loss(out, y)

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        if self.binary:
            return (out.reshape(-1) > 0).long()
        return super().predict(out)


class RobustRegression(_ZeroLinear):
    """Linear model ``out = w^T x (+ b)`` with the non-convex loss ``mean(log((y - out)^2 / 2 + 1))``.

    The robust regression of Ghosh et al. (2023).

    Targets 0/1 are mapped to -1/+1; prediction is ``out > 0``; weights start at zero. Binary only
    (``num_classes == 2``).

    Examples
    --------
    >>> model = RobustRegression((3,), 2)
    >>> out = torch.tensor([[1.0], [-1.0]])
    >>> model.loss(out, torch.tensor([1, 0])).item(), model.predict(out).tolist()
    (0.0, [1, 0])
    """

    def __init__(self, input_shape=(123,), num_classes: int = 2, bias: bool = True):
        if num_classes != 2:
            raise ValueError(f"robust-regression is binary: num_classes must be 2, got {num_classes}")
        super().__init__(input_shape, 1, bias)

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        target = 2 * y.reshape(-1).to(out.dtype) - 1
        return torch.log1p((target - out.reshape(-1)) ** 2 / 2).mean()

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        return (out.reshape(-1) > 0).long()
