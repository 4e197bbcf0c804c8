"""Rules registered by this module (see :mod:`fedrobust.aggregators.rules`): trust bootstrapping.

========================= ==================================================================
``fltrust``               FLTrust (Cao, Fang, Liu and Gong, 2021): client updates weighted by
                          ``ReLU(cos(g_i, g0))`` with the server's own update ``g0``, each
                          rescaled to ``||g0||``
========================= ==================================================================

FLTrust is the one rule whose round needs more than the rows: the server's update ``g0`` on its
clean root data, at the model the round sent. The rule takes it as the keyword ``reference`` of
its call. fedrobust's strategy ``fltrust`` (:class:`~fedrobust.strategies.fltrust.FLTrust`)
computes ``g0`` itself, on the root set the run carves out of the training split; a plugin
strategy (``FedFLTrust`` of either Flower API) gets it from the rule's ``server_update_fn``,
which the plugin's aggregation calls with the round's global model (:meth:`Rule.plugin_inputs`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from ..core.params import parse_params
from .fltrust import fltrust
from .rules import Rule, RuleStep, register_rule

__all__ = ["FLTrustRule", "ServerUpdateFn"]

ServerUpdateFn = Callable[[list[np.ndarray], int], Sequence[np.ndarray]]
"""``server_update_fn(global_arrays, server_round) -> update_arrays``: the server's own model delta
(its trained model minus ``global_arrays``) on its root data, in the global model's shapes."""


@register_rule
@dataclass(frozen=True)
class FLTrustRule(Rule):
    """FLTrust (:func:`~fedrobust.aggregators.fltrust.fltrust`; Cao, Fang, Liu and Gong, 2021,
    "FLTrust: Byzantine-robust Federated Learning via Trust Bootstrapping").

    A call needs the server's update ``g0`` as ``reference=`` (shape (d,), in the rows' units);
    the aggregate of ``scale · rows`` with the server update ``scale · g0`` is
    ``scale · fltrust(rows, g0)``, so the rule returns the given ``scale``. When no row is trusted
    (every cosine <= 0) the update is zero: the model stays where it is, and ``trusted_clients``
    is 0. Metrics: ``trusted_clients`` (rows with trust > 0), ``mean_trust`` (mean trust score
    over the rows), ``server_update_norm`` (``||g0||``).

    Parameters
    ----------
    server_update_fn : callable, optional
        For the plugin strategies (``FedFLTrust``), which must have it:
        ``server_update_fn(global_arrays, server_round) -> arrays``, the server's model delta on
        its own root data at the round's global model (a list of arrays in the global model's
        shapes). Not a run key: fedrobust's own strategy computes ``g0`` from ``root-size``.
    """

    name: ClassVar[str] = "fltrust"
    server_update_fn: ServerUpdateFn | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.server_update_fn is not None and not callable(self.server_update_fn):
            raise TypeError(
                f"server_update_fn must be callable as server_update_fn(global_arrays, server_round), "
                f"got {type(self.server_update_fn).__name__}"
            )

    def parameters(self) -> dict[str, Any]:
        """None: the server update source is not a parameter of the rule's math."""
        return {}

    @classmethod
    def from_config(cls, cfg: Any, **overrides: Any) -> "FLTrustRule":
        """The rule of a run: it has no ``rule-params`` (the root set's size is the run key ``root-size``).

        Examples
        --------
        >>> from types import SimpleNamespace
        >>> FLTrustRule.from_config(SimpleNamespace(rule_params="tau=1"))
        Traceback (most recent call last):
        ...
        ValueError: rule-params: fltrust takes no parameter 'tau' (the root set's size is the run key root-size)
        """
        for name in parse_params(str(getattr(cfg, "rule_params", "") or ""), "rule-params"):
            raise ValueError(
                f"rule-params: fltrust takes no parameter {name.replace('_', '-')!r} "
                "(the root set's size is the run key root-size)"
            )
        return cls(**overrides)

    def check_plugin(self) -> None:
        """A plugin strategy has no root data of its own: it needs ``server_update_fn``."""
        if self.server_update_fn is None:
            raise ValueError(
                "FedFLTrust needs server_update_fn=f(global_arrays, server_round) -> the server's model delta "
                "on its own clean root data (a list of arrays in the global model's shapes), e.g. trained as "
                "the clients train"
            )

    def plugin_inputs(self, global_arrays: Sequence[np.ndarray], server_round: int) -> dict[str, Any]:
        """``{"reference": g0}``: ``server_update_fn``'s update, flattened over the global model's
        floating-point arrays (the coordinates the plugin's delta rows hold).

        Raises
        ------
        ValueError
            Without ``server_update_fn``, or when its arrays do not match the global model's
            count and shapes.
        """
        self.check_plugin()
        like = [np.asarray(a) for a in global_arrays]
        update = list(self.server_update_fn([a.copy() for a in like], int(server_round)))
        if len(update) != len(like):
            raise ValueError(f"server_update_fn returned {len(update)} arrays, the global model has {len(like)}")
        flat = []
        for i, (u, a) in enumerate(zip(update, like)):
            u = np.asarray(u)
            if u.shape != a.shape:
                raise ValueError(f"server_update_fn's array {i} has shape {u.shape}, the global model's {a.shape}")
            if np.issubdtype(a.dtype, np.floating):
                flat.append(u.reshape(-1).astype(np.float64))
        return {"reference": torch.from_numpy(np.concatenate(flat))}

    def __call__(
        self,
        rows: torch.Tensor,
        state: torch.Tensor | None,
        server_round: int,
        scale: float = 1.0,
        *,
        reference: torch.Tensor | None = None,
    ) -> RuleStep:
        if reference is None:
            raise ValueError(
                "fltrust needs the server's update g0 as reference=... (the strategy fltrust computes it on "
                "its root set; a plugin strategy gets it from server_update_fn)"
            )
        out = fltrust(rows, torch.as_tensor(reference).to(rows.device))
        metrics = {
            "trusted_clients": int((out.trust > 0).sum()),
            "mean_trust": float(out.trust.mean()),
            "server_update_norm": float(torch.as_tensor(reference, dtype=torch.float64).norm()),
        }
        return RuleStep(out.aggregate, scale, None, metrics)
