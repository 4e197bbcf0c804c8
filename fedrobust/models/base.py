"""The model interface every fedrobust model implements."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FedModel(nn.Module):
    """A ``torch.nn.Module`` that also knows its loss and how to turn outputs into labels.

    Subclasses implement ``forward``; the defaults below are for multi-class models that output one logit
    per class: cross-entropy (mean over the batch) and arg-max. Binary models with a single output override
    both. Regularisation is not part of the loss (the trainer adds weight decay).
    """

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of logits ``out`` (N, C) against class indices ``y`` (N,)."""
        return F.cross_entropy(out, y.long())

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        """Predicted class indices (int64) from model outputs ``out`` (N, C)."""
        return out.argmax(dim=-1)


def flat_features(input_shape) -> int:
    """Number of input features of one example of shape ``input_shape`` (the product of its dims).

    Examples
    --------
    >>> flat_features((1, 28, 28))
    784
    """
    shape = tuple(input_shape)
    if not shape or any(not isinstance(d, int) or isinstance(d, bool) or d < 1 for d in shape):
        raise ValueError(f"input_shape must be a non-empty tuple of positive ints, got {input_shape!r}")
    n = 1
    for d in shape:
        n *= d
    return n


def check_image_shape(input_shape, name: str, min_size: int = 1) -> tuple[int, int, int]:
    """Return ``input_shape`` as ``(C, H, W)``, raising unless it is an image shape of at least ``min_size``."""
    shape = tuple(input_shape)
    if len(shape) != 3 or any(not isinstance(d, int) or isinstance(d, bool) or d < 1 for d in shape):
        raise ValueError(f"{name} needs input_shape (C, H, W) of positive ints, got {input_shape!r}")
    if min(shape[1:]) < min_size:
        raise ValueError(f"{name} needs images of at least {min_size}x{min_size}, got input_shape {shape}")
    return shape
