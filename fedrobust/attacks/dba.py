"""``dba``: the distributed backdoor, the trigger split into local parts that each attacker stamps alone.

Xie, Huang, Chen and Li (2020), "DBA: Distributed Backdoor Attacks against Federated Learning" (ICLR). The
global trigger is ``backdoor``'s (the ``trigger_size`` square in the bottom-right corner of images, or the
last ``trigger_size`` features of tabular rows); DBA cuts it into ``parts`` local triggers, bands of
consecutive rows of the square (chunks of the features), and every attacker relabels and stamps its samples
with its own band only. The attack success rate is measured with the global trigger, as in the paper
(:func:`~fedrobust.attacks.attack_success_rate` stamps :meth:`~Backdoor.stamp`, the whole trigger).

Which part a client stamps: ``part`` when given, else its rank among the run's sorted Byzantine ids
(``byzantine-mode = fixed``) modulo ``parts``; under ``dynamic`` the set changes every round while the
poisoned data is made once, so the part is the partition id modulo ``parts``.

What differs from the paper: its local triggers are separate bars with a gap and a location offset, and its
attackers may also scale their updates; here the parts are adjacent bands of one square and the updates
are not scaled (combine with ``model-replacement``'s scaling by hand if needed).
"""

from __future__ import annotations

import numpy as np

from ..core.checks import check_int
from .backdoor import Backdoor
from .registry import register_attack

__all__ = ["DBA"]


@register_attack("dba")
class DBA(Backdoor):
    """The ``backdoor`` with a trigger, each attacker stamping one of ``parts`` bands of it.

    Parameters
    ----------
    target, fraction, trigger_size, trigger_value
        As for ``backdoor`` (default ``fraction=0.5``, ``trigger_size=4``); the trigger is always on.
    parts : int
        Number of local triggers, in [1, ``trigger_size``] (default 4, as in the paper).
    part : int, optional
        The band this client stamps, in [0, ``parts``); None (default): from its rank (module docstring).

    Examples
    --------
    >>> x = np.zeros((1, 1, 4, 4), np.float32)
    >>> dba = DBA(target=1, fraction=1.0, trigger_size=2, parts=2, part=1, trigger_value=1.0)
    >>> xp, yp = dba.poison(x, np.array([0]), num_classes=2, rng=np.random.default_rng(0))
    >>> yp, xp[0, 0]
    (array([1]), array([[0., 0., 0., 0.],
           [0., 0., 0., 0.],
           [0., 0., 0., 0.],
           [0., 0., 1., 1.]], dtype=float32))
    >>> DBA(parts=2).for_client(partition_id=7, num_clients=10, clients_per_round=10, num_byzantine=2,
    ...                         byzantine_rank=1).part
    1
    """

    def __init__(
        self,
        target: int = 0,
        fraction: float = 0.5,
        trigger_size: int = 4,
        trigger_value: float | None = None,
        parts: int = 4,
        part: int | None = None,
    ) -> None:
        super().__init__(target, fraction, True, trigger_size, trigger_value)
        self.parts = check_int(parts, "parts", low=1)
        if self.parts > self.trigger_size:
            raise ValueError(f"parts must lie in [1, trigger_size={self.trigger_size}], got {parts}")
        self.part = None if part is None else check_int(part, "part", low=0)
        if self.part is not None and self.part >= self.parts:
            raise ValueError(f"part must lie in [0, parts={self.parts}), got {part}")

    def for_client(self, *, partition_id, num_clients, clients_per_round, num_byzantine, byzantine_rank=None,
                   server_step=1.0):
        """A copy with ``part`` set from the client's rank (or partition id) when it is None."""
        if self.part is not None:
            return self
        rank = partition_id if byzantine_rank is None else byzantine_rank
        return type(self)(**{**self.params, "part": rank % self.parts})

    def _train_stamp(self, x, value):
        if self.part is None:
            raise ValueError("dba: part is None; give part, or build the attack with for_client")
        whole = self.stamp(x, value=value)
        s = self.trigger_size
        band = np.array_split(np.arange(s), self.parts)[self.part]
        out = x.copy()
        if x.ndim == 2:
            cols = x.shape[1] - s + band
            out[:, cols] = whole[:, cols]
        else:
            rows = x.shape[-2] - s + band
            out[..., rows, -s:] = whole[..., rows, -s:]
        return out
