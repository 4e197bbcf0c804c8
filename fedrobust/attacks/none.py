"""``none``: the honest client (the default attack); both hooks return copies of their inputs."""

from __future__ import annotations

from .base import Attack
from .registry import register_attack

__all__ = ["NoAttack"]


@register_attack("none")
class NoAttack(Attack):
    """No attack: :meth:`corrupt` and :meth:`poison` return copies of their inputs (kind ``"none"``).

    Examples
    --------
    >>> import torch
    >>> a = NoAttack()
    >>> a.name, a.kind, a.params
    ('none', 'none', {})
    >>> a.corrupt(torch.tensor([1.0, -2.0]))
    tensor([ 1., -2.])
    """
