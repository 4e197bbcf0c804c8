"""Omniscient, colluding attacks: the Byzantine workers craft their replies from the round's honest ones.

The threat model of the robust-FL literature's strong attacks (ALIE, IPM, min-max, Fang, mimic, and
their adaptive variants): the f Byzantine workers of a round collude, and before they answer they
see

- the honest replies of **this round's sampled** clients, as the vectors the server reads from
  them (gradients, model differences, decoded compressed payloads, ternary signs: the rows of the
  server's (n, L) matrix), never replies of other rounds nor of clients not sampled;
- the global model, the round, n (replies in the round) and f;
- for adaptive attacks, the server's rule: its name, parameters and a function ``aggregate(rows)``
  giving the server's aggregate of any (n, L) matrix, in the rows' space.

That is an :class:`AdversaryView`. An :class:`OmniscientAttack` maps it and the (h, L) honest rows
to the (f, L) Byzantine rows (:meth:`OmniscientAttack.craft`); whoever runs the adversary (the
server loop of every fedrobust strategy, or :mod:`fedrobust.plugin.attacked` around any Flower
strategy) then writes each row in the protocol's own wire format, so the server cannot tell the
crafted replies by their format. The Byzantine clients themselves run the honest protocol (their
``corrupt`` and ``poison`` are the identity), so client-side work and bytes stay honest.

Examples
--------
>>> import torch
>>> from fedrobust.attacks import get_attack
>>> honest = torch.tensor([[1.0, 2.0], [3.0, 2.0], [2.0, 5.0]])
>>> attack = get_attack("ipm", epsilon=0.5)
>>> attack.kind
'omniscient'
>>> attack.craft(honest, AdversaryView(n=5, f=2))
tensor([[-1.0000, -1.5000],
        [-1.0000, -1.5000]])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from .base import Attack

__all__ = ["AdversaryView", "OmniscientAttack", "honest_mean_std", "repeat_row"]


@dataclass(frozen=True)
class AdversaryView:
    """What the colluding adversary knows of a round besides the honest rows.

    Parameters
    ----------
    n : int
        Replies in the round the server will aggregate: honest ones plus the f crafted ones.
    f : int
        Byzantine replies to craft (>= 1).
    server_round : int
        The round (1-based); 0 when unknown.
    model : torch.Tensor, optional
        The flat global model the round started from.
    rule : str
        The name of the server's rule (a ``strategy`` name, or a Flower strategy's class name).
    rule_params : dict
        The rule's parameters (e.g. ``{"beta": 0.2}``), for attacks tailored to a rule.
    aggregate : callable, optional
        ``aggregate(rows) -> (L,)``: the server's aggregate of an (m, L) matrix of rows, in the
        rows' space, without changing the server's state; None when the server cannot preview it
        (then attacks that need it raise ValueError).
    generator : torch.Generator, optional
        Seeded source of the adversary's random draws (per run, round); None: torch's default.
    """

    n: int
    f: int
    server_round: int = 0
    model: torch.Tensor | None = None
    rule: str = ""
    rule_params: dict[str, Any] = field(default_factory=dict)
    aggregate: Callable[[torch.Tensor], torch.Tensor] | None = None
    generator: torch.Generator | None = None

    def __post_init__(self) -> None:
        for name in ("n", "f"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"AdversaryView.{name} must be an int, got {type(value).__name__}")
        if self.f < 1 or self.n < self.f:
            raise ValueError(f"AdversaryView needs 1 <= f <= n, got n={self.n}, f={self.f}")


class OmniscientAttack(Attack):
    """A colluding attack that crafts the round's f Byzantine rows from its h honest rows.

    Subclasses implement ``_craft(honest, view) -> (f, L)`` (or ``(L,)``, sent by all f) and are
    registered with :func:`~fedrobust.attacks.register_attack`. ``honest`` arrives checked: a 2-D
    finite floating-point tensor with h >= 1 rows; compute on its device and dtype.
    """

    kind: ClassVar[str] = "omniscient"
    needs_aggregate: ClassVar[bool] = False
    """Whether :meth:`craft` calls ``view.aggregate`` (adaptive attacks): servers that cannot preview
    their aggregate refuse such an attack when the run is configured."""

    def craft(self, honest: torch.Tensor, view: AdversaryView) -> torch.Tensor:
        """The (f, L) rows the Byzantine workers send, from the (h, L) honest rows of the round.

        Raises
        ------
        ValueError
            ``honest`` is not a non-empty finite (h, L) float tensor, or the attack needs
            ``view.aggregate`` and it is None.
        """
        if not isinstance(view, AdversaryView):
            raise TypeError(f"view must be an AdversaryView, got {type(view).__name__}")
        if not isinstance(honest, torch.Tensor) or honest.ndim != 2 or not honest.is_floating_point():
            got = f"shape {tuple(honest.shape)}, {honest.dtype}" if isinstance(honest, torch.Tensor) else type(honest).__name__
            raise ValueError(f"honest must be a 2-D floating-point tensor (h, L), got {got}")
        if honest.shape[0] < 1 or honest.shape[1] < 1:
            raise ValueError(f"honest must have at least one row and one column, got shape {tuple(honest.shape)}")
        if not bool(torch.isfinite(honest).all()):
            raise ValueError("honest rows must be finite")
        if self.needs_aggregate and view.aggregate is None:
            raise ValueError(f"attack {self.name!r} needs the server's aggregate (view.aggregate), which is None")
        out = self._craft(honest.detach(), view)
        if not isinstance(out, torch.Tensor):
            raise ValueError(f"{type(self).__name__}._craft must return a tensor, got {type(out).__name__}")
        if out.ndim == 1:
            out = repeat_row(out, view.f)
        if tuple(out.shape) != (view.f, honest.shape[1]):
            raise ValueError(
                f"{type(self).__name__}._craft must return shape {(view.f, honest.shape[1])} or {(honest.shape[1],)}, "
                f"got {tuple(out.shape)}"
            )
        return out.to(device=honest.device, dtype=honest.dtype)

    def _craft(self, honest: torch.Tensor, view: AdversaryView) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement _craft(honest, view)")


def honest_mean_std(honest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinate-wise mean μ and standard deviation σ of the honest rows (σ with Bessel's
    correction, as ``torch.std``; 0 for a single row), computed in float64 and cast back.

    Examples
    --------
    >>> mu, sigma = honest_mean_std(torch.tensor([[0.0, 1.0], [2.0, 1.0]]))
    >>> mu, sigma
    (tensor([1., 1.]), tensor([1.4142, 0.0000]))
    """
    work = honest.to(torch.float64)
    mu = work.mean(dim=0)
    n = honest.shape[0]
    if n > 1:
        # Two passes over the rows: several times faster than torch.std(dim=0) on CPU, which
        # reduces across the strided dimension; the same value to float64 rounding.
        sigma = (work - mu).square_().sum(dim=0).div_(n - 1).sqrt_()
    else:
        sigma = torch.zeros_like(mu)
    return mu.to(honest.dtype), sigma.to(honest.dtype)


def repeat_row(row: torch.Tensor, f: int) -> torch.Tensor:
    """``f`` copies of one (L,) row as an (f, L) tensor (a view; no copy).

    Examples
    --------
    >>> repeat_row(torch.tensor([1.0, 2.0]), 2)
    tensor([[1., 2.],
            [1., 2.]])
    """
    return row.reshape(1, -1).expand(int(f), -1)

