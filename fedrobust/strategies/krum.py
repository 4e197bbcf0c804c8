"""Krum and multi-Krum on the gradient protocol: ``x ← x − lr · Krum_f,m(G)``.

From Blanchard, El Mhamdi, Guerraoui and Stainer (2017), "Machine Learning with Adversaries: Byzantine
Tolerant Gradient Descent" (NeurIPS).

``f`` is ``krum-f``, or with ``krum-f = -1`` the number of Byzantine clients expected among the
sampled ones, ``floor(byzantine-fraction · clients-per-round)``. Krum needs ``2f + 2 < n``: when a
round has too few accepted replies for that (rejections, or ψ = 0.4 of 10 clients), ``f`` is
lowered to the largest valid value and the round records the ``krum_f`` it used. ``m = krum-m``
rows are averaged (1: Krum), at most ``n − f``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ..aggregators.rules import KrumRule, krum_f
from ..attacks import num_byzantine
from .rule import RuleStrategy

if TYPE_CHECKING:  # config imports the libraries, never the other way round
    from ..config import RunConfig

__all__ = ["Krum", "krum_f"]


class Krum(RuleStrategy):
    """``x ← x − lr · krum(G, f, m)`` (:class:`~fedrobust.aggregators.rules.KrumRule`); records
    the ``krum_f`` used each round."""

    name: ClassVar[str] = "krum"
    rule_class = KrumRule

    @classmethod
    def config_warnings(cls, cfg: RunConfig) -> list[str]:
        """An explicit ``krum-f`` below the Byzantine clients expected in a round; ``krum-f`` (or the
        one derived from ``byzantine-fraction``) or ``krum-m`` capped for ``clients-per-round``
        replies; Krum undefined for fewer than 3 (the replies are averaged)."""
        n, psi, out = cfg.clients_per_round, cfg.byzantine_fraction, []
        expected = num_byzantine(n, psi)
        if cfg.krum_f >= 0 and cfg.attack != "none" and psi > 0 and cfg.krum_f < expected:
            out.append(
                f"krum-f={cfg.krum_f} < {expected} Byzantine clients expected among clients-per-round={n} "
                f"(byzantine-fraction={psi}); use krum-f >= {expected} or -1"
            )
        if n < 3:
            return [*out, f"krum with clients-per-round={n} < 3: Krum is undefined, so every round averages the replies"]
        wanted, f = (expected if cfg.krum_f < 0 else cfg.krum_f), krum_f(cfg.krum_f, psi, n, n)
        if wanted > f:
            source = f"krum-f=-1 derives f={wanted} from byzantine-fraction={psi}" if cfg.krum_f < 0 else f"krum-f={wanted}"
            out.append(f"{source}, capped to f={f}: Krum needs 2f + 2 < n = clients-per-round={n}")
        if cfg.krum_m > n - f:
            out.append(f"krum-m={cfg.krum_m} is capped to {n - f}: multi-Krum averages at most n - f = {n} - {f} rows")
        return out
