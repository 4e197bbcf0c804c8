"""Attack metrics: the backdoor's attack success rate (reported per round next to clean accuracy)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..core.checks import check_int
from .backdoor import Backdoor

__all__ = ["attack_success_rate", "model_predictor"]


def attack_success_rate(
    predict_fn: Callable[[np.ndarray], np.ndarray],
    x_test: np.ndarray,
    y_test: np.ndarray,
    attack: Backdoor,
    batch_size: int | None = None,
) -> float:
    """Share of the non-target test inputs classified as the backdoor's target.

    With a trigger (``attack.trigger``), the trigger is stamped on the test inputs first (value:
    ``attack.trigger_value``, else the maximum of ``x_test``); without one, this is the target-class
    confusion on clean inputs. Test inputs whose true label is the target are left out.

    Parameters
    ----------
    predict_fn : callable
        ``predict_fn(x) -> labels``: a batch of inputs to predicted class indices (a numpy array,
        a list or a torch tensor of shape ``(len(x),)``).
    x_test, y_test : numpy.ndarray
        Test inputs and their integer labels.
    attack : Backdoor
        The backdoor attack (its ``target``, ``trigger`` and trigger settings are used).
    batch_size : int, optional
        Call ``predict_fn`` on batches of this size (default: all inputs at once).

    Returns
    -------
    float
        In [0, 1].

    Examples
    --------
    >>> x = np.zeros((4, 1, 4, 4), np.float32); x[:, :, 0, 0] = 1.0
    >>> y = np.array([0, 1, 2, 3])
    >>> bd = Backdoor(target=0, trigger=True)
    >>> says_target_if_triggered = lambda xb: np.where(xb[:, 0, -1, -1] == 1.0, 0, 1)
    >>> attack_success_rate(says_target_if_triggered, x, y, bd)
    1.0
    >>> attack_success_rate(lambda xb: np.full(len(xb), 3), x, y, bd)
    0.0
    """
    if not isinstance(attack, Backdoor):
        raise TypeError(f"attack must be a Backdoor (the 'backdoor' attack), got {type(attack).__name__}")
    if not callable(predict_fn):
        raise TypeError(f"predict_fn must be callable, got {type(predict_fn).__name__}")
    if not isinstance(x_test, np.ndarray) or not isinstance(y_test, np.ndarray):
        raise TypeError("x_test and y_test must be numpy arrays")
    if y_test.ndim != 1 or y_test.shape[0] != x_test.shape[0]:
        raise ValueError(f"y_test must have shape ({x_test.shape[0]},) to match x_test, got {y_test.shape}")
    keep = y_test != attack.target
    if not keep.any():
        raise ValueError(f"x_test holds no input outside the target class {attack.target}")
    x = x_test[keep]
    if attack.trigger:
        value = attack.trigger_value if attack.trigger_value is not None else x_test.max()
        x = attack.stamp(x, value=value)
    n = x.shape[0]
    step = n if batch_size is None else check_int(batch_size, "batch_size", low=1)
    hits = 0
    for start in range(0, n, step):
        xb = x[start : start + step]
        pred = predict_fn(xb)
        if isinstance(pred, torch.Tensor):
            pred = pred.detach().cpu().numpy()
        pred = np.asarray(pred)
        if pred.shape != (xb.shape[0],):
            raise ValueError(f"predict_fn must return one label per input, shape ({xb.shape[0]},), got {pred.shape}")
        hits += int((pred == attack.target).sum())
    return hits / n


def model_predictor(model: torch.nn.Module, batch_size: int = 1024) -> Callable[[np.ndarray], np.ndarray]:
    """``predict_fn`` for :func:`attack_success_rate` from a torch classifier.

    Inputs are moved to the model's device; labels are ``model.predict(logits)`` when the model
    has a ``predict`` method (fedrobust models do), else the arg-max of the logits.

    Examples
    --------
    >>> m = torch.nn.Linear(2, 3)
    >>> predict = model_predictor(m)
    >>> predict(np.zeros((5, 2), np.float32)).shape
    (5,)
    """
    batch_size = check_int(batch_size, "batch_size", low=1)

    @torch.no_grad()
    def predict(x: np.ndarray) -> np.ndarray:
        was_training = model.training
        model.eval()
        try:
            param = next(model.parameters(), None)
            device = param.device if param is not None else torch.device("cpu")
            out = []
            for start in range(0, len(x), batch_size):
                xb = torch.as_tensor(x[start : start + batch_size], device=device)
                logits = model(xb)
                labels = model.predict(logits) if hasattr(model, "predict") else logits.argmax(dim=-1)
                out.append(labels.cpu().numpy())
        finally:
            model.train(was_training)
        return np.concatenate(out) if out else np.zeros(0, np.int64)

    return predict
