"""The attack registry: names -> classes, :func:`register_attack` and :func:`get_attack`."""

from __future__ import annotations

from typing import Any, TypeVar

from .base import KINDS, Attack, init_params

__all__ = ["ATTACKS", "register_attack", "get_attack"]

ATTACKS: dict[str, type[Attack]] = {}
"""Registered attack classes by name (filled on import of :mod:`fedrobust.attacks`)."""

A = TypeVar("A", bound=type[Attack])


def register_attack(name: str, cls: A | None = None, *, overwrite: bool = False) -> Any:
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
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")

    def decorator(klass: A) -> A:
        if not (isinstance(klass, type) and issubclass(klass, Attack)):
            raise TypeError(f"only Attack subclasses can be registered, got {klass!r}")
        if klass.kind not in KINDS:
            raise ValueError(f"{klass.__name__}.kind must be one of {', '.join(KINDS)}, got {klass.kind!r}")
        if name in ATTACKS and ATTACKS[name] is not klass and not overwrite:
            raise ValueError(f"attack name {name!r} is already registered (pass overwrite=True to replace it)")
        klass.name = name
        ATTACKS[name] = klass
        return klass

    if cls is None:
        return decorator
    return decorator(cls)


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
    ValueError: unknown attack 'nope'; known: backdoor, bit-flip, ...
    >>> get_attack("sign-flip", scale=2)
    Traceback (most recent call last):
    ...
    ValueError: attack 'sign-flip' takes no parameter 'scale'; it takes: (none)
    >>> get_attack("negative-update", c=2)
    Traceback (most recent call last):
    ...
    ValueError: attack 'negative-update': c must lie in (0, 1), got 2
    """
    if isinstance(name, Attack):
        if params:
            raise ValueError("params cannot be given together with an Attack instance")
        return name
    if not isinstance(name, str):
        raise TypeError(f"name must be a str or an Attack, got {type(name).__name__}")
    if name not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; known: {', '.join(sorted(ATTACKS))}")
    cls = ATTACKS[name]
    takes, any_keyword = init_params(cls)
    if not any_keyword:
        for key in params:
            if key not in takes:
                accepted = ", ".join(takes) or "(none)"
                raise ValueError(f"attack {name!r} takes no parameter {key!r}; it takes: {accepted}")
    try:
        return cls(**params)
    except (ValueError, TypeError) as err:
        raise type(err)(f"attack {name!r}: {err}") from None
