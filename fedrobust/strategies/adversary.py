"""The colluding adversary inside every strategy's server loop: omniscient attacks in simulation.

When the run's ``attack`` is an :class:`~fedrobust.attacks.OmniscientAttack` (ALIE, IPM, min-max,
...), :func:`craft_round` runs in :meth:`VectorStrategy.aggregate_fit
<fedrobust.strategies.VectorStrategy.aggregate_fit>` on the round's replies, before they are
validated and stacked:

1. the replies of this round's Byzantine partition ids (:func:`~fedrobust.attacks.byzantine_clients`,
   among the clients that answered) are the f crafted ones; every other reply that the server
   would accept is an honest row, read exactly as the server reads it (:meth:`read_reply
   <fedrobust.strategies.VectorStrategy.read_reply>`: gradients, model differences, decoded
   compressed payloads, C-RSA's ternary signs), so the adversary sees this round's sampled honest
   replies and nothing else;
2. the attack crafts f rows from them (:meth:`~fedrobust.attacks.OmniscientAttack.craft`), with an
   :class:`~fedrobust.attacks.AdversaryView` of the round: n, f, the global model, the strategy's
   name and parameters and, for adaptive attacks, the strategy's own aggregate of any rows
   (:meth:`~fedrobust.strategies.VectorStrategy.aggregate_preview`);
3. each crafted row replaces a Byzantine reply, written in the protocol's own wire format by
   :meth:`~fedrobust.strategies.VectorStrategy.encode_reply` (the model's arrays, the run
   compressor's payload, C-RSA's packed signs, norm-threshold's reported ``grad_norm``) with the
   client's own ``num_examples`` and metrics, so the server cannot tell it by its format. The
   crafted replies then go through the same validation as every reply.

The Byzantine clients run the honest protocol (their work and bytes are real; ``bytes_up`` counts
the crafted payloads). A round's record gets ``crafted_clients`` (the partition ids whose replies
were crafted) and ``attack_distance`` (the mean ℓ2 distance of the crafted rows to the honest
mean, in the rows' space; None when no honest reply was there to see, and the Byzantine replies
are then left as their clients sent them).
"""

from __future__ import annotations

from logging import WARNING
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from flwr.common import Code, FitRes, Status
from flwr.common.logger import log
from flwr.server.client_proxy import ClientProxy

from ..attacks import AdversaryView, OmniscientAttack, byzantine_clients
from ..core.results import RoundRecord
from ..core.wire import ndarrays_to_parameters
from ..core.rng import stream_generator

if TYPE_CHECKING:
    from .base import VectorStrategy

__all__ = ["craft_round"]


def craft_round(
    strategy: VectorStrategy, results: list[tuple[ClientProxy, FitRes]], server_round: int, record: RoundRecord
) -> list[tuple[ClientProxy, FitRes]]:
    """The round's replies with the Byzantine ones crafted by the run's omniscient attack (a new list;
    the input is not modified). Replies are returned unchanged when the attack is not omniscient or
    no Byzantine client answered. See the module docstring.
    """
    attack = strategy.attack
    if not isinstance(attack, OmniscientAttack):
        return results
    byzantine = byzantine_clients(strategy.cfg, server_round)
    partitions = [strategy._reply_partition(proxy, res, i) for i, (proxy, res) in enumerate(results)]
    crafted_at = [i for i, p in enumerate(partitions) if p in byzantine]
    if not crafted_at:
        return results
    record.extra["crafted_clients"] = [partitions[i] for i in crafted_at]
    length = strategy.reply_length(server_round)
    rows, honest_partitions, honest_metrics = [], [], []
    for i, (_, res) in enumerate(results):
        if i in crafted_at:
            continue
        arrays, _ = strategy._decode(res)
        if arrays is None:
            continue
        row = np.empty(length, dtype=np.float32)
        if strategy._check_reply(res, arrays, row) is None:
            rows.append(row)
            honest_partitions.append(partitions[i])
            honest_metrics.append(dict(res.metrics or {}))
    if not rows:
        record.extra["attack_distance"] = None
        log(WARNING, "round %s: no honest reply to see; the Byzantine replies are left as sent", server_round)
        return results
    device = strategy.device
    honest = torch.from_numpy(np.stack(rows)).to(device)
    order = honest_partitions + [partitions[i] for i in crafted_at]
    metrics = honest_metrics + [dict(results[i][1].metrics or {}) for i in crafted_at]
    view = AdversaryView(
        n=len(order),
        f=len(crafted_at),
        server_round=server_round,
        model=strategy.x,
        rule=strategy.name,
        rule_params=strategy.rule_params(),
        aggregate=_preview(strategy, order, metrics) if strategy.previews_aggregate() else None,
        generator=stream_generator("adversary", strategy.cfg.seed, server_round),
    )
    out = list(results)
    try:
        crafted = attack.craft(honest, view)
        for row, i in zip(crafted, crafted_at):
            proxy, res = results[i]
            arrays, reply_metrics = strategy.encode_reply(row, dict(res.metrics or {}), server_round, partitions[i])
            out[i] = (proxy, FitRes(Status(Code.OK, ""), ndarrays_to_parameters(arrays), res.num_examples, reply_metrics))
    except Exception as err:  # noqa: BLE001 - an attack that fails is recorded; the round goes on
        record.extra["attack_distance"] = None
        record.extra["attack_error"] = f"{type(err).__name__}: {err}"
        log(WARNING, "round %s: attack %s failed (%s); the Byzantine replies are left as sent", server_round,
            attack.name, record.extra["attack_error"])
        return results
    mean = honest.to(torch.float64).mean(dim=0)
    record.extra["attack_distance"] = float((crafted.to(torch.float64) - mean).norm(dim=1).mean())
    return out


def _preview(strategy: VectorStrategy, partitions: list[int], metrics: list[dict[str, Any]]):
    """``aggregate(rows)`` for the view: the strategy's preview of the run's pre-aggregation of the
    rows, with the rows' partition ids and metrics when the attack hands it as many rows as the
    round has replies (and nothing pre-aggregated them)."""

    def aggregate(rows: torch.Tensor) -> torch.Tensor:
        rows = strategy.pre_aggregate(rows.to(strategy.device, torch.float32))  # as step() would see them
        same = rows.shape[0] == len(partitions) and strategy.pre_aggregation is None
        return strategy.aggregate_preview(
            rows.to(strategy.device, torch.float32),
            partitions if same else list(range(rows.shape[0])),
            metrics if same else [{} for _ in range(rows.shape[0])],
        )

    return aggregate
