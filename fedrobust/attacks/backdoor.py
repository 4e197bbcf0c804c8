"""``backdoor``: relabel a fraction of the attacker's samples to a target class, optionally with a trigger.

Acharya, Hashemi, Jain, Sanghavi, Dhillon and Topcu (2022), "Robust Training in High Dimensions via Block
Coordinate Geometric Median Descent" relabel a ψ fraction of the samples to one target class (e.g.
Fashion-MNIST class 8, "bag") and report how often the model then predicts the target. With ``trigger=True``
the relabelled samples also carry a small fixed pattern, so the attack's success can be measured on triggered
test inputs (:func:`~fedrobust.attacks.attack_success_rate`).

The trigger (:meth:`Backdoor.stamp`):

- images ``(N, C, H, W)`` (any input with >= 2 example axes): the ``trigger_size`` × ``trigger_size``
  square in the bottom-right corner of the last two axes, in every channel, set to the trigger value;
- tabular rows ``(N, F)``: the last ``trigger_size`` features set to the trigger value.

The trigger value is ``trigger_value`` when given, else the maximum of the array being stamped
(the data's brightest level, e.g. white for normalised images).
"""

from __future__ import annotations

import numpy as np

from ..core.checks import check_fraction, check_int
from ._checks import check_real, count_of
from .base import DataAttack
from .registry import register_attack

__all__ = ["Backdoor"]


@register_attack("backdoor")
class Backdoor(DataAttack):
    """Relabel ``floor(fraction · N)`` seeded-random samples to ``target`` (all of them by default).

    With ``trigger=True`` those samples also get the trigger stamped (see the module docstring).

    Parameters
    ----------
    target : int
        The target class (default 0); must be < the data's number of classes.
    fraction : float
        Share in [0, 1] of the attacker's samples relabelled (default 1.0).
    trigger : bool
        Stamp the trigger on the relabelled samples (default False: plain relabelling as in Acharya et al.,
        2022).
    trigger_size : int
        Side of the square (images) or number of features (tabular), >= 1 (default 3).
    trigger_value : float, optional
        Value written by the trigger; None (default) uses the maximum of the stamped data.

    Examples
    --------
    >>> x = np.zeros((2, 1, 5, 5), np.float32); x[:, :, 0, 0] = 1.0
    >>> bd = Backdoor(target=7, trigger=True)
    >>> xp, yp = bd.poison(x, np.array([1, 2]), num_classes=10, rng=np.random.default_rng(0))
    >>> yp
    array([7, 7])
    >>> xp[0, 0]
    array([[1., 0., 0., 0., 0.],
           [0., 0., 0., 0., 0.],
           [0., 0., 1., 1., 1.],
           [0., 0., 1., 1., 1.],
           [0., 0., 1., 1., 1.]], dtype=float32)
    """

    def __init__(
        self,
        target: int = 0,
        fraction: float = 1.0,
        trigger: bool = False,
        trigger_size: int = 3,
        trigger_value: float | None = None,
    ) -> None:
        self.target = check_int(target, "target", low=0)
        self.fraction = check_fraction(fraction, "fraction", upper=1.0, inclusive_upper=True)
        if not isinstance(trigger, (bool, np.bool_)):
            raise TypeError(f"trigger must be a bool, got {trigger!r}")
        self.trigger = bool(trigger)
        self.trigger_size = check_int(trigger_size, "trigger_size", low=1)
        self.trigger_value = None if trigger_value is None else check_real(trigger_value, "trigger_value")

    def stamp(self, x: np.ndarray, value: float | None = None) -> np.ndarray:
        """A copy of ``x`` with the trigger stamped on every example.

        Parameters
        ----------
        x : numpy.ndarray
            Examples, ``(N, C, H, W)`` images or ``(N, F)`` tabular rows.
        value : float, optional
            The trigger value; default ``trigger_value``, else ``x.max()``.

        Returns
        -------
        numpy.ndarray
            New array, same shape and dtype.

        Examples
        --------
        >>> Backdoor(trigger_size=2).stamp(np.zeros((1, 4), np.float32), value=5.0)
        array([[0., 0., 5., 5.]], dtype=float32)
        """
        if not isinstance(x, np.ndarray) or x.ndim < 2:
            raise ValueError(f"x must be a numpy array of shape (N, F) or (N, C, H, W), got {getattr(x, 'shape', x)!r}")
        s = self.trigger_size
        if x.ndim == 2 and x.shape[1] < s:
            raise ValueError(f"trigger_size={s} exceeds the number of features {x.shape[1]}")
        if x.ndim >= 3 and min(x.shape[-2:]) < s:
            raise ValueError(f"trigger_size={s} exceeds the image size {x.shape[-2:]}")
        if value is None:
            value = self.trigger_value
        if value is None:
            value = x.max() if x.size else 0.0
        out = x.copy()
        if x.ndim == 2:
            out[:, -s:] = value
        else:
            out[..., -s:, -s:] = value
        return out

    def _poison(self, x, y, num_classes, rng):
        if self.target >= num_classes:
            top = num_classes - 1
            raise ValueError(f"target must lie in [0, {top}] (num_classes={num_classes}), got {self.target}")
        n = y.shape[0]
        k = count_of(self.fraction, n)
        idx = np.arange(n) if k == n else np.sort(rng.choice(n, size=k, replace=False))
        x_out, y_out = x.copy(), y.copy()
        y_out[idx] = self.target
        if self.trigger and k:
            value = self.trigger_value if self.trigger_value is not None else x.max()
            x_out[idx] = self._train_stamp(x[idx], value)
        return x_out, y_out

    def _train_stamp(self, x: np.ndarray, value: float) -> np.ndarray:
        """The trigger on the attacker's relabelled samples: the whole trigger (``dba`` stamps one part)."""
        return self.stamp(x, value=value)
