"""Models by name, all :class:`FedModel` subclasses (a ``torch.nn.Module`` with ``loss`` and ``predict``).

- ``lenet``: BGMD's LeNet-style CNN (1.16M parameters on 28x28).
- ``mlp``: one hidden layer of 1000 ReLU units (002).
- ``cifar-cnn``: 2 conv + 3 fully connected layers, 368,052 parameters on CIFAR-10 (003).
- ``resnet18``: CIFAR ResNet-18 (GroupNorm by default).
- ``logistic``: linear model with the logistic loss.
- ``robust-regression``: linear model with the loss ``log((y - w^T x)^2 / 2 + 1)`` (004).

:func:`flat_params`, :func:`set_flat_params`, :func:`flat_grad` and :func:`num_params` view a model as one
flat vector in ``model.parameters()`` order.
"""

from .base import FedModel
from .params import flat_grad, flat_params, num_params, set_flat_params
from .registry import MODELS, get_model, register_model

__all__ = [
    "FedModel",
    "MODELS",
    "flat_grad",
    "flat_params",
    "get_model",
    "num_params",
    "register_model",
    "set_flat_params",
]
