"""Model registry: build any fedrobust model by name with :func:`get_model`."""

from __future__ import annotations

import numbers
from typing import Callable

from ..core.rng import seeded_global_rng
from .base import FedModel
from .cifar_cnn import CifarCNN
from .lenet import LeNet
from .linear import Logistic, RobustRegression
from .mlp import MLP
from .resnet import ResNet18

#: A builder takes ``(input_shape, num_classes, **options)`` and returns a :class:`FedModel`.
ModelBuilder = Callable[..., FedModel]

#: Registered models: name -> builder (a FedModel subclass or any callable with that signature).
MODELS: dict[str, ModelBuilder] = {
    "lenet": LeNet,
    "mlp": MLP,
    "cifar-cnn": CifarCNN,
    "resnet18": ResNet18,
    "logistic": Logistic,
    "robust-regression": RobustRegression,
}


def register_model(name: str, builder: ModelBuilder | None = None):
    """Register ``builder`` under ``name``; usable as a decorator.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> @register_model("tiny-linear")
    ... class TinyLinear(FedModel):
    ...     def __init__(self, input_shape, num_classes):
    ...         super().__init__()
    ...         self.fc = nn.Linear(input_shape[0], num_classes)
    ...     def forward(self, x):
    ...         return self.fc(x)
    >>> get_model("tiny-linear", input_shape=(4,), num_classes=3)(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
    >>> del MODELS["tiny-linear"]
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")
    if name in MODELS:
        raise ValueError(f"model name {name!r} is already registered")

    def add(fn: ModelBuilder) -> ModelBuilder:
        if not callable(fn):
            raise TypeError("builder must be callable as builder(input_shape, num_classes, **options)")
        MODELS[name] = fn
        return fn

    return add if builder is None else add(builder)


def get_model(name: str, input_shape, num_classes: int, seed: int | None = None, **options) -> FedModel:
    """Build the model ``name`` for examples of shape ``input_shape`` and ``num_classes`` classes.

    Parameters
    ----------
    name : str
        One of :data:`MODELS`: ``"lenet"``, ``"mlp"``, ``"cifar-cnn"``, ``"resnet18"``, ``"logistic"``,
        ``"robust-regression"``.
    input_shape : tuple of int
        Shape of one example (``DatasetSplits.input_shape``), e.g. ``(1, 28, 28)`` or ``(123,)``.
    num_classes : int
        Number of classes (>= 2).
    seed : int, optional
        When given, the initial weights are drawn from ``torch.manual_seed(seed)`` inside a forked RNG, so
        the global torch RNG is left untouched and every call with the same seed gives the same weights.
    **options
        Model-specific keyword arguments (e.g. ``norm="batch"`` for ``resnet18``, ``bias=False`` for the
        linear models, ``hidden=...`` for ``mlp``).

    Returns
    -------
    FedModel
        On the CPU; move it with ``.to(device)``.

    Examples
    --------
    >>> import torch
    >>> model = get_model("mlp", input_shape=(64,), num_classes=10, seed=0)
    >>> model(torch.zeros(5, 64)).shape
    torch.Size([5, 10])
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
    if isinstance(input_shape, (int, numbers.Integral)):
        input_shape = (int(input_shape),)
    input_shape = tuple(int(d) for d in input_shape)
    if seed is None:
        return MODELS[name](input_shape, int(num_classes), **options)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
    with seeded_global_rng(int(seed)):
        return MODELS[name](input_shape, int(num_classes), **options)
