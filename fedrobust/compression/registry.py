"""The compressor registry: names -> classes, :func:`register_compressor` and :func:`get_compressor`."""

from __future__ import annotations

from typing import Any

from ..core.registry import Registry
from .base import Compressor

__all__ = ["COMPRESSORS", "register_compressor", "get_compressor"]

COMPRESSORS = Registry("compressor", Compressor)
"""Registered compressor classes by name (filled on import of :mod:`fedrobust.compression`)."""


def register_compressor(name: str, cls: type[Compressor] | None = None, *, overwrite: bool = False) -> Any:
    """Register a :class:`Compressor` subclass under ``name`` (decorator or plain call).

    Parameters
    ----------
    name : str
        Registry name, e.g. ``"top-k"``; also stored as ``cls.name``.
    cls : type[Compressor], optional
        The class; omit it to use this as a decorator.
    overwrite : bool
        Allow replacing an existing entry (default: a duplicate name raises ValueError).

    Returns
    -------
    type[Compressor] or Callable
        The class (plain call) or the decorator.

    Examples
    --------
    >>> import numpy as np
    >>> @register_compressor("doctest-half")
    ... class Half(Compressor):
    ...     dtypes = {"values": np.float32}
    ...     def _encode(self, x, *, seed, generator):
    ...         return {"values": (x / 2).float().cpu().numpy()}
    ...     def _decode(self, fields, d, device):
    ...         return torch.from_numpy(fields["values"].copy()).to(device)
    ...     def _delta(self, d):
    ...         return 0.75
    >>> import torch
    >>> get_compressor("doctest-half").compress(torch.tensor([2.0, -4.0]))
    tensor([ 1., -2.])
    >>> _ = COMPRESSORS.pop("doctest-half")
    """
    return COMPRESSORS.register(name, cls, overwrite=overwrite)


def get_compressor(name: str | Compressor, **params: Any) -> Compressor:
    """Build the compressor registered under ``name`` with ``params``.

    A :class:`Compressor` instance is returned unchanged (then ``params`` must be empty).

    Examples
    --------
    >>> get_compressor("top-k", k=10)
    TopK(k=10, ratio=None)
    >>> get_compressor("nope")
    Traceback (most recent call last):
    ...
    ValueError: unknown compressor 'nope'; known: bernoulli-qsgd, identity, qsgd, rand-k, scaled-sign, sign, top-k
    """
    return COMPRESSORS.build(name, **params)
