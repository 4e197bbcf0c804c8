"""The ``rsa`` protocol of ``c-rsa`` and ``rsa``: a stateful worker with its own model x_k.

The worker of He, Zhu and Ling (2023), "C-RSA: Byzantine-robust and communication-efficient distributed
learning in the non-convex and non-IID regime".

Each round the worker receives C(x₀), the master's model on the round's coordinates ω (config
``coord-method``: ``rand``: a ``rand-k`` payload, its seed regenerates ω; ``top``: a ``top-k``
payload with ω's indices; ``all`` (RSA): the whole model). With ``with-model`` the arrays start
with the whole x₀ (the model's arrays), sent the first time the worker takes part: x_k starts
from it. Then, with α = ``lr`` and λ = ``lam``:

1. message m = sign(C(x₀) − x_k) on ω, sent as l packed ternary values (:func:`~fedrobust.optim.pack_signs`);
2. x_k ← x_k − α[∇f(x_k; minibatch) + λ·P_ω(sign(x_k − C(x₀)))] (:func:`~fedrobust.optim.worker_update`),
   with one seeded minibatch of ``batch-size`` examples (He et al., 2023: no weight decay on the workers);
3. x_k is stored in ``Context.state`` (an ``ArrayRecord`` under :data:`MODEL_KEY`).

A worker that has no x_k yet and gets no whole model (its state was lost) starts from its own
model, which the App builds from the run seed, i.e. the master's initial x₀.

Byzantine workers (in the paper they must follow the format, but send sign(C(x₀) − z) for an arbitrary z):
the honest flat message here is the real-valued difference v = C(x₀) − x_k on ω, and an update
attack replaces it before encoding, so a Byzantine worker sends sign(attack(v)), i.e. z = C(x₀) −
attack(v). For the paper's attacks: ``large-number`` (every entry 10,000) sends all +1, ``sign-flip``
sends −m, ``gaussian-replace`` (N(0, 1) entries) sends uniformly random ±1; ``bit-flip`` acts as
``sign-flip`` and ``gaussian`` adds noise to v before the sign.

Examples
--------
>>> from fedrobust.models import get_model
>>> client = RSAClient(get_model("logistic", input_shape=(3,), num_classes=2), torch.ones(4, 3),
...                    torch.tensor([0, 1, 0, 1]), partition_id=0)
>>> x0 = [np.array([[1.0, -1.0, 0.0]], np.float32), np.array([0.5], np.float32)]
>>> config = {"seed": 0, "server-round": 1, "batch-size": 4, "lr": 0.1, "lam": 1.0,
...           "coord-method": "all", "coord-count": 4, "with-model": True}
>>> arrays, n, metrics = client.fit(x0, config)
>>> metrics["bytes_sent"]   # four zero signs (x_k started at x0): two one-byte bit-planes
2
>>> [round(v, 3) for v in client.local_model().tolist()]   # x_k = x0 - 0.1 * minibatch gradient
[0.988, -1.012, -0.012, 0.488]
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from flwr.common import Scalar

from ..compression import payload_to_ndarrays
from ..models import flat_grad, flat_params, set_flat_params
from ..core.ndarrays import flatten
from ..optim import draw_coordinates, pack_signs_of, worker_update
from .base import HonestClient


__all__ = ["RSAClient", "MODEL_KEY"]

MODEL_KEY = "fedrobust-rsa-model"
"""The ``Context.state`` key of the worker's own model x_k."""


class RSAClient(HonestClient):
    """The regular worker of He et al. (2023) (see the module docstring)."""

    protocol: ClassVar[str] = "rsa"

    def local_model(self) -> torch.Tensor | None:
        """x_k (float32 on the client's device), or None before the worker's first round."""
        return self.state_vector(MODEL_KEY, "x")

    def master_values(
        self, parameters: list[np.ndarray], config: dict[str, Scalar]
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
        """(the whole x₀ or None, ω or None for all coordinates, x₀ on ω) from the received arrays.

        Raises
        ------
        ValueError
            If the arrays do not match the round's ``coord-method`` and ``coord-count``.
        """
        d = sum(int(np.prod(s)) for s in self.shapes)
        method, l = str(config["coord-method"]), int(config["coord-count"])
        n_model = len(self.shapes) if bool(config["with-model"]) else 0
        x0 = flatten(parameters[:n_model]).to(self.device) if n_model else None
        rest = parameters[n_model:]
        if method == "all":
            if x0 is None or rest:
                raise ValueError("coord-method 'all' (rsa) sends the whole model and nothing else")
            return x0, None, x0
        if len(rest) != 2 or rest[1].shape != (l,):
            raise ValueError(f"expected a {method!r} payload of 2 arrays with {l} values after the model's arrays")
        if method == "rand":
            omega = draw_coordinates(d, l, seed=int(rest[0].reshape(-1)[0]), method="rand")
        elif method == "top":
            omega = torch.from_numpy(rest[0].astype(np.int64))
        else:
            raise ValueError(f"coord-method must be one of all, rand, top; got {method!r}")
        values = torch.from_numpy(np.asarray(rest[1], dtype=np.float32).copy())
        return x0, omega.to(self.device), values.to(self.device)

    def fit(
        self, parameters: list[np.ndarray], config: dict[str, Scalar]
    ) -> tuple[list[np.ndarray], int, dict[str, Scalar]]:
        """Send sign(C(x₀) − x_k) on ω, step x_k, store it."""
        x0, omega, x0_on = self.master_values(parameters, config)
        xk = self.local_model()
        if xk is None:
            xk = x0.clone() if x0 is not None else flat_params(self.model).to(self.device)
        set_flat_params(self.model, xk)
        (xb, yb), = self.minibatches(config, steps=1)
        self.model.zero_grad(set_to_none=False)
        loss = self.batch_loss(xb, yb)
        loss.backward()
        grad = flat_grad(self.model)
        difference = x0_on - (xk if omega is None else xk[omega])
        new_xk = worker_update(xk, grad, x0_on, omega, alpha=float(config["lr"]), lam=float(config["lam"]))
        self.keep_state_vector(MODEL_KEY, "x", new_xk)
        set_flat_params(self.model, new_xk)
        return self.reply(difference, len(xb), {"loss": float(loss.detach())})

    def encode(self, vec: torch.Tensor) -> list[np.ndarray]:
        """sign(vec) as packed ternary values (NaN counts as 0)."""
        return payload_to_ndarrays(pack_signs_of(vec))
