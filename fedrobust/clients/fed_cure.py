"""The ``cubic`` protocol of ``fed-cure``: send a compressed cubic-regularised Newton step.

The client of Ghosh, Maity and Mazumdar (2023), "FED-CURE: A Robust Federated Learning Algorithm with Cubic
Regularized Newton".

The client loads x and solves s ≈ argmin_s gᵀs + (γ/2)·sᵀHs + (M/6)·γ²·‖s‖³
(:func:`~fedrobust.optim.cubic_step`) with g and H the gradient and Hessian of its loss over its
**whole local data set** (the paper: the local gradient and Hessian; no minibatch), γ = ``lr``,
M = ``cubic-m`` and ``cubic-steps`` solver steps. H is only used through Hessian-vector products
(double backward through ``torch.func.functional_call``), never built. The loss includes
``weight-decay``/2·‖x‖² (so ``weight-decay`` = λ/n gives the paper's (λ/2n)‖w‖²). It sends Q(s) with the
round's compressor (``identity`` or the paper's ``bernoulli-qsgd``); s is a descent step, which the
server adds. An update attack replaces s before compression (``negative-update`` sends −c·s).

Examples
--------
>>> from fedrobust.models import get_model
>>> client = CubicClient(get_model("logistic", input_shape=(2,), num_classes=2), torch.eye(2),
...                      torch.tensor([0, 1]), partition_id=0)
>>> config = {"seed": 0, "server-round": 1, "lr": 1.0, "cubic-m": 10.0, "cubic-steps": 10,
...           "compressor": "identity"}
>>> (s,), n, metrics = client.fit([np.zeros((1, 2), np.float32), np.zeros(1, np.float32)], config)
>>> [round(v, 3) + 0.0 for v in s.tolist()], n   # lowers the logit of example 0, raises that of example 1
([-0.179, 0.179, 0.0], 2)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np
import torch
from flwr.common import Scalar

from ..optim import cubic_step
from .base import HonestClient
from .compressed import CompressingClient

__all__ = ["CubicClient", "local_loss"]


def local_loss(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, weight_decay: float = 0.0
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model's mean loss on (x, y) plus ``weight_decay``/2·‖w‖², as a function of the flat parameters w.

    Twice differentiable in w when the model is (for :func:`~fedrobust.optim.hvp`).

    Examples
    --------
    >>> lin = torch.nn.Linear(1, 1, bias=False)
    >>> lin.loss = lambda out, y: ((out.reshape(-1) - y) ** 2).mean()
    >>> f = local_loss(lin, torch.tensor([[1.0], [2.0]]), torch.tensor([1.0, 2.0]), weight_decay=2.0)
    >>> float(f(torch.tensor([1.0])))   # zero data loss, 2/2 · 1² penalty
    1.0
    """
    names = [name for name, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    sizes = [p.numel() for _, p in model.named_parameters()]

    def loss(w: torch.Tensor) -> torch.Tensor:
        params = {n: part.view(s) for n, part, s in zip(names, torch.split(w, sizes), shapes)}
        out = torch.func.functional_call(model, params, (x,))
        value = model.loss(out, y)
        return value + (weight_decay / 2) * (w * w).sum() if weight_decay else value

    return loss


class _Cubic(HonestClient):
    """The uncompressed cubic step (the compression mixin wraps it)."""

    def fit(
        self, parameters: list[np.ndarray], config: dict[str, Scalar]
    ) -> tuple[list[np.ndarray], int, dict[str, Scalar]]:
        """Load x, solve the cubic sub-problem on the local data, reply with the step s."""
        x = self.load(parameters)
        self.model.train()
        loss_fn = local_loss(self.model, self.x, self.y, float(config.get("weight-decay", 0.0)))
        s = cubic_step(
            loss_fn, x, gamma=float(config["lr"]), M=float(config["cubic-m"]), steps=int(config["cubic-steps"])
        )
        with torch.no_grad():
            loss = float(loss_fn(x))
        return self.reply(s, len(self.x), {"loss": loss})


class CubicClient(CompressingClient, _Cubic):
    """Sends Q(s), s the cubic-regularised Newton step on the whole local data (see the module docstring)."""

    protocol: ClassVar[str] = "cubic"
