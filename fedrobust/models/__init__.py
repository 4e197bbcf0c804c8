"""Models by name, all :class:`FedModel` subclasses (a ``torch.nn.Module`` with ``loss`` and ``predict``).

- ``lenet``: BGMD's LeNet-style CNN (1.16M parameters on 28x28; Acharya et al., 2022).
- ``mlp``: one hidden layer of 1000 ReLU units (Ghosh et al., 2021).
- ``cifar-cnn``: 2 conv + 3 fully connected layers, 368,052 parameters on CIFAR-10 (He et al., 2023).
- ``resnet18``: CIFAR ResNet-18 (GroupNorm by default).
- ``logistic``: linear model with the logistic loss.
- ``robust-regression``: linear model with the loss ``log((y - w^T x)^2 / 2 + 1)`` (Ghosh et al., 2023).

The papers: Acharya, Hashemi, Jain, Sanghavi, Dhillon and Topcu (2022), "Robust Training in High Dimensions
via Block Coordinate Geometric Median Descent"; Ghosh, Maity, Kadhe, Mazumdar and Ramchandran (2021),
"Communication-Efficient and Byzantine-Robust Distributed Learning with Error Feedback"; He, Zhu and Ling
(2023), "C-RSA: Byzantine-robust and communication-efficient distributed learning in the non-convex and
non-IID regime"; Ghosh, Maity and Mazumdar (2023), "FED-CURE: A Robust Federated Learning Algorithm with Cubic
Regularized Newton".

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
