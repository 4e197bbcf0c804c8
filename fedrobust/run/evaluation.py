"""Centralised evaluation of a flat global model on a held-out split (the server's test metrics).

Clean test loss and accuracy always (:func:`make_evaluate_fn`); under the ``backdoor`` attack also
the attack success rate (:func:`make_attack_success_fn`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..attacks import Backdoor, attack_success_rate, model_predictor
from ..models import set_flat_params

__all__ = ["evaluate_model", "make_evaluate_fn", "make_attack_success_fn"]


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


def make_attack_success_fn(
    model: torch.nn.Module, x: np.ndarray, y: np.ndarray, attack: Backdoor, batch_size: int = 1024
) -> Callable[[torch.Tensor], float]:
    """``fn(vec) -> rate``: the backdoor's attack success rate of the flat model ``vec`` on (x, y).

    The rate is the share of the inputs outside the target class that the model classifies as the
    target, with the trigger stamped on them when ``attack.trigger`` (else the target-class
    confusion on clean inputs); see :func:`fedrobust.attacks.attack_success_rate`.

    Examples
    --------
    >>> from fedrobust.attacks import get_attack
    >>> from fedrobust.models import flat_params, get_model
    >>> m = get_model("logistic", input_shape=(2,), num_classes=2)
    >>> rate = make_attack_success_fn(m, np.zeros((4, 2), np.float32), np.array([0, 1, 1, 1]),
    ...                               get_attack("backdoor", target=0))
    >>> rate(torch.zeros_like(flat_params(m)))  # all-zero logits: the arg-max is class 0, the target
    1.0
    """
    if not isinstance(attack, Backdoor):
        raise TypeError(f"attack must be a Backdoor (the 'backdoor' attack), got {type(attack).__name__}")
    predict = model_predictor(model, batch_size)

    def success_rate(vec: torch.Tensor) -> float:
        set_flat_params(model, vec)
        return attack_success_rate(predict, x, y, attack)

    return success_rate
