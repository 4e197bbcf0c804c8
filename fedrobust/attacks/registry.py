"""The attack registry: names -> classes, :func:`register_attack` and :func:`get_attack`."""

from __future__ import annotations

from typing import Any

from ..core.registry import Registry
from .base import KINDS, Attack

__all__ = ["ATTACKS", "register_attack", "get_attack"]


def _check_kind(klass: type[Attack]) -> None:
    if klass.kind not in KINDS:
        raise ValueError(f"{klass.__name__}.kind must be one of {', '.join(KINDS)}, got {klass.kind!r}")


ATTACKS = Registry("attack", Attack, check=_check_kind)
"""Registered attack classes by name (filled on import of :mod:`fedrobust.attacks`)."""


def register_attack(name: str, cls: type[Attack] | None = None, *, overwrite: bool = False) -> Any:
    """Register an :class:`~fedrobust.attacks.Attack` subclass under ``name`` (decorator or plain call).

    Parameters
    ----------
    name : str
        Registry name, e.g. ``"bit-flip"``; also stored as ``cls.name``.
    cls : type[Attack], optional
        The class; omit it to use this as a decorator.
    overwrite : bool
        Allow replacing an existing entry (default: a duplicate name raises ValueError).

    Returns
    -------
    type[Attack] or Callable
        The class (plain call) or the decorator.

    Examples
    --------
    >>> import numpy as np
    >>> from fedrobust.attacks import DataAttack
    >>> @register_attack("doctest-zero-labels")
    ... class ZeroLabels(DataAttack):
    ...     def _poison(self, x, y, num_classes, rng):
    ...         return x.copy(), np.zeros_like(y)
    >>> get_attack("doctest-zero-labels").poison(np.ones((2, 3), np.float32), np.array([1, 2]), 3)[1]
    array([0, 0])
    >>> _ = ATTACKS.pop("doctest-zero-labels")
    """
    return ATTACKS.register(name, cls, overwrite=overwrite)


def get_attack(name: str | Attack = "none", **params: Any) -> Attack:
    """Build the attack registered under ``name`` with ``params`` (default: ``none``, the honest client).

    An :class:`~fedrobust.attacks.Attack` instance is returned unchanged (then ``params`` must be empty).

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones), a parameter the attack does not
        take (the message lists those it takes) or a parameter out of range.

    Examples
    --------
    >>> get_attack("bit-flip", scale=10)
    BitFlip(scale=10.0)
    >>> get_attack("nope")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown attack 'nope'; known: alie, backdoor, bit-flip, ...
    >>> get_attack("sign-flip", scale=2)
    Traceback (most recent call last):
    ...
    ValueError: attack 'sign-flip' takes no parameter 'scale'; it takes: (none)
    >>> get_attack("negative-update", c=2)
    Traceback (most recent call last):
    ...
    ValueError: attack 'negative-update': c must lie in (0, 1), got 2
    """
    return ATTACKS.build(name, **params)
