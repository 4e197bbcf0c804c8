"""FLTrust on the gradient protocol: the server trains too, and trusts the clients that agree with it.

From Cao, Fang, Liu and Gong (2021), "FLTrust: Byzantine-robust Federated Learning via Trust
Bootstrapping" (NDSS).

**Protocol change: the server trains.** Every other gradient-protocol strategy only aggregates what
the clients send. The FLTrust server holds a clean *root set*: ``root-size`` examples (default 100,
the paper's size) drawn, seeded by the run seed, from the training split *before* it is partitioned,
so no client's partition contains them and the test split is never touched
(:func:`fedrobust.run.build.root_indices`; the clients' partitions, :func:`~fedrobust.run.build.client_indices`,
split the rest). Each round every sampled client sends one minibatch gradient g_i at the current
model x, as for mean-SGD; the server computes its own g0 at x, by the honest gradient client's own
code (:meth:`fedrobust.clients.GradientClient.fit`), on a minibatch of ``batch-size`` root examples
drawn from the stream ``root-minibatch`` (seeded by the run seed and the round; torch's global RNG
during the computation by ``root-fit``), plus ``weight-decay``·x like the clients' (never worker
momentum: g0 is the plain gradient). Then ``x ← x − lr · fltrust(G, g0)``
(:class:`~fedrobust.aggregators.rules_fltrust.FLTrustRule`): each g_i weighted by
``TS_i = ReLU(cos(g_i, g0))`` and rescaled to ``||g0||``.

*Why a minibatch and not the root set's full gradient:* the paper's server computes its update
exactly as the clients compute theirs (same batch size, same procedure), so g0 and the honest g_i
have the same kind of noise and an honest client's cosine with g0 is what the paper's analysis
assumes; reusing the client's code path makes that literal. With ``root-size <= batch-size`` the
minibatch is the whole root set.

When no client is trusted (every cosine <= 0) the model stays where it is; the round records
``trusted_clients = 0``. A g0 that is not finite (a diverged model) is replaced by zero, which
trusts no one, and the round records ``server_update_finite = False``. Each round also records
``mean_trust`` and ``server_update_norm``.

A bare ``FLTrust(cfg, x0, shapes)`` has no root data: :func:`fedrobust.run.app.make_strategy`
passes ``server_update_fn`` (:meth:`FLTrust.server_update_from_root` on the run's model and root
set); a caller building the strategy directly passes its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from logging import WARNING
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from flwr.common import Scalar
from flwr.common.logger import log

from ..aggregators.rules_fltrust import FLTrustRule
from ..clients.gradient import GradientClient
from ..core.checks import all_finite
from ..core.errors import ConfigError
from ..core.ndarrays import flatten, to_ndarrays
from ..core.rng import seeded_global_rng, stream_generator, stream_seed
from .rule import RuleStrategy

if TYPE_CHECKING:  # config imports the libraries, never the other way round
    from ..config import RunConfig

__all__ = ["FLTrust", "RootGradient", "ServerGradientFn"]

ServerGradientFn = Callable[[torch.Tensor, int], torch.Tensor]
"""``server_update_fn(x, server_round) -> g0``: the server's gradient at the flat model ``x``, shape (d,)."""


class _RootClient(GradientClient):
    """The gradient client's computation on the server's root set, with the server's minibatch stream."""

    def minibatch_generator(self, config: dict[str, Scalar]) -> torch.Generator:
        """The root minibatch of a round: stream ``root-minibatch``, seeded by (``seed``, ``server-round``)."""
        return stream_generator("root-minibatch", int(config["seed"]), int(config["server-round"]))


class RootGradient:
    """``g0(x, round)``: the gradient at ``x`` on a seeded minibatch of the root set, computed by
    :meth:`GradientClient.fit <fedrobust.clients.GradientClient.fit>` (see the module docstring).

    Parameters
    ----------
    model : torch.nn.Module
        A model of the run's architecture (its parameters are overwritten each call).
    x, y : torch.Tensor
        The root examples and labels.
    batch_size, seed : int
        The run's ``batch-size`` and ``seed``.
    weight_decay : float
        The run's ``weight-decay`` (added to g0 as the clients add it to theirs).
    device : torch.device or str
        Where the gradient is computed.
    """

    def __init__(
        self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int, seed: int,
        weight_decay: float = 0.0, device: torch.device | str = "cpu",
    ) -> None:
        self.client = _RootClient(model, x, y, partition_id=0, device=device)
        self.device = torch.device(device)
        self.config: dict[str, Scalar] = {
            "batch-size": int(batch_size), "seed": int(seed), "weight-decay": float(weight_decay), "client-momentum": 0.0,
        }

    def __call__(self, x: torch.Tensor, server_round: int) -> torch.Tensor:
        config = {**self.config, "server-round": int(server_round)}
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with seeded_global_rng(stream_seed("root-fit", int(config["seed"]), int(server_round)), devices):
            arrays, _, _ = self.client.fit(to_ndarrays(x, self.client.shapes), config)
        return flatten(arrays).to(self.device)


class FLTrust(RuleStrategy):
    """``x ← x − lr · fltrust(G, g0)`` with g0 the server's gradient on its root set (see the module
    docstring).

    Parameters
    ----------
    cfg, x0, shapes, evaluate_fn, on_round
        As for every :class:`~fedrobust.strategies.base.VectorStrategy`.
    server_update_fn : callable
        ``server_update_fn(x, server_round) -> g0``, the server's gradient at the flat model ``x``
        (shape (d,)); :meth:`server_update_from_root` makes the run's.

    Raises
    ------
    ConfigError
        Without ``server_update_fn``.
    """

    name: ClassVar[str] = "fltrust"
    rule_class = FLTrustRule
    uses_root_data: ClassVar[bool] = True

    def __init__(
        self, cfg: RunConfig, x0: torch.Tensor, shapes: Sequence[tuple[int, ...]], *,
        server_update_fn: ServerGradientFn | None = None, **kwargs: Any,
    ) -> None:
        super().__init__(cfg, x0, shapes, **kwargs)
        if server_update_fn is None:
            raise ConfigError(
                "fltrust needs server_update_fn(x, server_round) -> the server's gradient on its root set; "
                "fedrobust.run.app.make_strategy builds it from the run's model and root-size examples "
                "(FLTrust.server_update_from_root)"
            )
        if not callable(server_update_fn):
            raise TypeError(f"server_update_fn must be callable, got {type(server_update_fn).__name__}")
        self.server_update_fn = server_update_fn
        self._reference: tuple[int, torch.Tensor, torch.Tensor, bool] | None = None  # (round, x, g0, finite)

    @classmethod
    def state_bytes_for(cls, cfg: RunConfig, d: int) -> int:
        """``x``, the round's cached (x, g0) and the server's own model with its gradients: 5 d-vectors."""
        return 20 * d

    @classmethod
    def server_update_from_root(
        cls, cfg: RunConfig, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor
    ) -> RootGradient:
        """The run's ``server_update_fn``: :class:`RootGradient` on the root examples ``x, y``."""
        return RootGradient(
            model, x, y, batch_size=cfg.batch_size, seed=cfg.seed, weight_decay=cfg.weight_decay,
            device=cfg.torch_device(),
        )

    def server_update(self) -> tuple[torch.Tensor, bool]:
        """(g0 at the current ``x`` for :attr:`server_round`, whether the server's gradient was
        finite); computed once per round and model (an adaptive attack's previews reuse it)."""
        cached = self._reference
        if cached is not None and cached[0] == self.server_round and torch.equal(cached[1], self.x):
            return cached[2], cached[3]
        g0 = torch.as_tensor(self.server_update_fn(self.x.clone(), self.server_round))
        g0 = g0.to(self.device, torch.float32).reshape(-1)
        if g0.numel() != self.x.numel():
            raise ValueError(f"server_update_fn returned {g0.numel()} entries, the model has {self.x.numel()}")
        finite = all_finite(g0)
        if not finite:
            log(WARNING, "round %s: the server's root-set gradient is not finite; no client is trusted", self.server_round)
            g0 = torch.zeros_like(g0)
        self._reference = (self.server_round, self.x.clone(), g0, finite)
        return g0, finite

    def step(self, updates: torch.Tensor, weights: torch.Tensor) -> dict[str, Scalar] | None:
        """One FLTrust step on the rows; ``weights`` are ignored (one batch each)."""
        g0, finite = self.server_update()
        out = self.rule(updates, None, self.server_round, scale=self.lr, reference=g0)
        self.x.sub_(out.update, alpha=out.scale)
        return {**out.metrics, "server_update_finite": finite}

    def aggregate_preview(self, rows: torch.Tensor, partitions: list[int], metrics: list[dict[str, Scalar]]) -> torch.Tensor:
        """FLTrust's aggregate of a copy of the rows with this round's g0, at unit scale."""
        g0, _ = self.server_update()
        out = self.rule(rows.clone(), None, self.server_round, scale=1.0, reference=g0)
        return out.update * out.scale

    def rule_params(self) -> dict[str, Any]:
        """What the adversary is told: the root set's size."""
        return {"root_size": int(self.cfg.root_size)}

