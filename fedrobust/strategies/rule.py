"""Gradient-protocol strategies made from an aggregation rule: ``x ← x − lr · rule(G)``.

Each round every sampled client returns one minibatch gradient g_i at the current model x; the
server stacks them into G (n, d) and steps along the aggregate of ``lr · G`` that the strategy's
rule (:mod:`fedrobust.aggregators.rules`) computes. The rule's parameters are the run keys of the
same names, checked when the strategy is built. :func:`gradient_strategy` makes such a strategy
class for any rule class, so a rule registered with :func:`~fedrobust.aggregators.register_rule`
is a ``strategy`` value with no further code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from flwr.common import Scalar

from ..aggregators.rules import Rule
from .gradient import GradientStrategy

__all__ = ["RuleStrategy", "gradient_strategy"]


class RuleStrategy(GradientStrategy):
    """``x ← x − (aggregate of lr · G)`` by the class's ``rule_class`` (see the module docstring).

    Attributes
    ----------
    rule : fedrobust.aggregators.rules.Rule
        The rule with this run's parameters.
    rule_state : torch.Tensor or None
        The rule's server state between rounds (None for stateless rules).
    """

    rule_class: ClassVar[type[Rule]] = Rule

    def __init__(self, cfg: Any, x0: torch.Tensor, shapes: Sequence[tuple[int, ...]], **kwargs: Any) -> None:
        super().__init__(cfg, x0, shapes, **kwargs)
        self.rule = self.rule_class.from_config(cfg)
        self.rule_state: torch.Tensor | None = None

    @classmethod
    def config_problems(cls, cfg: Any) -> list[str]:
        """What the rule refuses of the run's values of its parameters (the config check calls this)."""
        try:
            cls.rule_class.from_config(cfg)
        except (TypeError, ValueError) as err:
            return [str(err)]
        return [*super().config_problems(cfg)]

    def step(self, updates: torch.Tensor, weights: torch.Tensor) -> dict[str, Scalar] | None:
        """One rule step on the rows (overwritten); ``weights`` are ignored (one batch each)."""
        out = self.rule(updates, self.rule_state, self.server_round, scale=self.lr)
        self.x.sub_(out.update, alpha=out.scale)
        self.rule_state = out.state
        return dict(out.metrics) or None

    def aggregate_preview(self, rows: torch.Tensor, partitions: list[int], metrics: list[dict[str, Scalar]]) -> torch.Tensor:
        """The rule's step on a copy of the rows at unit scale; ``rule_state`` is left as it is."""
        state = None if self.rule_state is None else self.rule_state.clone()
        out = self.rule(rows.clone(), state, self.server_round, scale=1.0)
        return out.update * out.scale

    def rule_params(self) -> dict[str, Any]:
        """The rule's parameters (its dataclass fields)."""
        return dict(vars(self.rule))

    def state_dict(self) -> dict[str, Any]:
        """The base state plus the rule's server state (e.g. centered clipping's last aggregate)."""
        state = super().state_dict()
        if self.rule_state is not None:
            state["rule_state"] = self.rule_state.detach().cpu().clone()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output, the rule's state included (None when it has none)."""
        super().load_state_dict(state)
        saved = state.get("rule_state")
        self.rule_state = None if saved is None else torch.as_tensor(saved).to(self.device)


def gradient_strategy(rule_class: type[Rule]) -> type[RuleStrategy]:
    """A :class:`RuleStrategy` subclass for ``rule_class``, named after it (``GMDRule`` → ``GMD``).

    Examples
    --------
    >>> from fedrobust.aggregators.rules import CMDRule
    >>> cls = gradient_strategy(CMDRule)
    >>> cls.__name__, cls.name, cls.protocol
    ('CMD', 'cmd', 'gradient')
    """
    class_name = rule_class.__name__.removesuffix("Rule") or rule_class.__name__
    doc = f"``x ← x − lr · {rule_class.name}(G)`` on the gradient protocol, by :class:`{rule_class.__qualname__}`."
    return type(class_name, (RuleStrategy,), {
        "name": rule_class.name, "rule_class": rule_class, "__doc__": doc, "__module__": __name__,
    })
