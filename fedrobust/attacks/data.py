"""Data attacks on labels and features: a Byzantine client trains honestly on poisoned local data.

=====================  ===================================================  ==========================
name                   poisoned data                                        parameters (default)
=====================  ===================================================  ==========================
``label-flip``         y ~ uniform on {0, …, C−1} (may equal the true y)    —
``label-shift``        y → C − 1 − y                                        —
``feature-gaussian``   x + N(0, variance), entrywise                        variance > 0 (100)
``feature-impulse``    salt-and-pepper on a ``fraction`` of the entries     fraction ∈ [0, 1] (0.9)
=====================  ===================================================  ==========================

``backdoor`` lives in :mod:`fedrobust.attacks.backdoor`.

Sources: Acharya, Hashemi, Jain, Sanghavi, Dhillon and Topcu (2022), "Robust Training in High Dimensions via
Block Coordinate Geometric Median Descent"; Ghosh, Maity, Kadhe, Mazumdar and Ramchandran (2021),
"Communication-Efficient and Byzantine-Robust Distributed Learning with Error Feedback"; Ghosh, Maity and
Mazumdar (2023), "FED-CURE: A Robust Federated Learning Algorithm with Cubic Regularized Newton".
"""

from __future__ import annotations

import numpy as np

from ..core.checks import check_fraction
from ._checks import check_positive
from .base import DataAttack
from .registry import register_attack

__all__ = ["LabelFlip", "LabelShift", "FeatureGaussian", "FeatureImpulse"]


def _float_work(x: np.ndarray):
    """The dtype numpy can draw in for ``x``: float64 for float64 data, float32 otherwise."""
    return np.float64 if x.dtype == np.float64 else np.float32


@register_attack("label-flip")
class LabelFlip(DataAttack):
    """Random labels: each label replaced by an independent uniform draw from {0, …, C−1}.

    Used by Ghosh et al. (2021) and Ghosh et al. (2023).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x, y = LabelFlip().poison(np.zeros((6, 2), np.float32), np.zeros(6, np.int64), 3, rng)
    >>> y.shape, bool(((y >= 0) & (y < 3)).all())
    ((6,), True)
    """

    def _poison(self, x, y, num_classes, rng):
        return x.copy(), rng.integers(0, num_classes, size=y.shape[0]).astype(y.dtype)


@register_attack("label-shift")
class LabelShift(DataAttack):
    """Label shift (Ghosh et al., 2021): y → C − 1 − y (for 10 classes, y → 9 − y).

    Examples
    --------
    >>> LabelShift().poison(np.zeros((3, 1), np.float32), np.array([0, 4, 9]), 10)[1]
    array([9, 5, 0])
    """

    def _poison(self, x, y, num_classes, rng):
        return x.copy(), (num_classes - 1 - y).astype(y.dtype)


@register_attack("feature-gaussian")
class FeatureGaussian(DataAttack):
    """Feature corruption by additive noise: x + N(0, variance) on every entry; labels kept.

    Used by Acharya et al. (2022).

    Parameters
    ----------
    variance : float
        Noise variance > 0 (default 100), in the units of the (normalised) features.

    Examples
    --------
    >>> x, _ = FeatureGaussian(variance=9.0).poison(np.zeros((1000, 100), np.float32),
    ...                                             np.zeros(1000, np.int64), 2, np.random.default_rng(0))
    >>> x.dtype, round(float(x.std()))
    (dtype('float32'), 3)
    """

    def __init__(self, variance: float = 100.0) -> None:
        self.variance = check_positive(variance, "variance")

    def _poison(self, x, y, num_classes, rng):
        noise = rng.standard_normal(x.shape, dtype=_float_work(x))
        noise *= np.sqrt(self.variance)
        noise += x
        return noise.astype(x.dtype, copy=False), y.copy()


@register_attack("feature-impulse")
class FeatureImpulse(DataAttack):
    """Impulse (salt-and-pepper) noise on a ``fraction`` of the feature entries; labels kept.

    Used by Acharya et al. (2022).

    Each entry is hit independently with probability ``fraction``; a hit entry becomes the data's
    maximum (salt) or minimum (pepper) with probability 1/2 each. Minimum and maximum are taken
    over the whole ``x`` passed in (for normalised images: the normalised black and white levels).
    Channels of one pixel are hit independently.

    Parameters
    ----------
    fraction : float
        Probability in [0, 1] that an entry is hit (default 0.9).

    Examples
    --------
    >>> x = np.linspace(0, 1, 100, dtype=np.float32).reshape(1, 100)
    >>> out, _ = FeatureImpulse(fraction=1.0).poison(x, np.array([0]), 2, np.random.default_rng(0))
    >>> sorted(set(out.ravel().tolist()))
    [0.0, 1.0]
    """

    def __init__(self, fraction: float = 0.9) -> None:
        self.fraction = check_fraction(fraction, "fraction", upper=1.0, inclusive_upper=True)

    def _poison(self, x, y, num_classes, rng):
        if x.size == 0:
            return x.copy(), y.copy()
        lo, hi = x.min(), x.max()
        u = rng.random(x.shape, dtype=np.float32)  # hit: u < fraction; salt among hits: u < fraction / 2
        out = np.where(u < self.fraction, np.where(u < self.fraction / 2, hi, lo), x)
        return out.astype(x.dtype, copy=False), y.copy()
