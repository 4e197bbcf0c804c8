"""Centralised evaluation of a flat global model on a held-out split (the server's test metric)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .models import set_flat_params

__all__ = ["evaluate_model", "make_evaluate_fn"]


@torch.no_grad()
def evaluate_model(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024
) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` (a FedModel: ``.loss``, ``.predict``) on (x, y).

    Examples
    --------
    >>> from fedrobust.models import get_model
    >>> m = get_model("logistic", input_shape=(2,), num_classes=2)
    >>> loss, acc = evaluate_model(m, torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]))
    >>> acc
    0.5
    """
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x and y must hold the same, non-zero number of examples, got {len(x)} and {len(y)}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loss_sum = 0.0
    correct = 0
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size].to(device)
        yb = y[start : start + batch_size].to(device)
        out = model(xb)
        loss_sum += float(model.loss(out, yb)) * len(xb)
        correct += int((model.predict(out) == yb).sum())
    model.train(was_training)
    return loss_sum / len(x), correct / len(x)


def make_evaluate_fn(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024
) -> Callable[[torch.Tensor], tuple[float, float]]:
    """``fn(vec) -> (loss, accuracy)``: load the flat vector into ``model``, evaluate on (x, y).

    ``x`` and ``y`` are moved to the model's device once, here.
    """
    device = next(model.parameters()).device
    x, y = x.to(device), y.to(device)

    def evaluate(vec: torch.Tensor) -> tuple[float, float]:
        set_flat_params(model, vec)
        return evaluate_model(model, x, y, batch_size)

    return evaluate
