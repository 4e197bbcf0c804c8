"""The container every dataset loader returns, and the shared normalisation helpers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DatasetSplits:
    """A train/test split held as NumPy arrays.

    Attributes
    ----------
    name : str
        Registry name of the dataset (e.g. ``"mnist5k"``).
    x_train, x_test : numpy.ndarray
        ``float32`` features: images as ``(N, C, H, W)``, tabular data as ``(N, F)``.
    y_train, y_test : numpy.ndarray
        ``int64`` class indices in ``0 .. num_classes - 1`` (binary sets use 0/1).
    num_classes : int
        Number of classes.
    input_shape : tuple of int
        Shape of one example, ``x_train.shape[1:]``.

    Examples
    --------
    >>> import numpy as np
    >>> ds = DatasetSplits("toy", np.zeros((4, 3), np.float32), np.array([0, 1, 0, 1]),
    ...                    np.zeros((2, 3), np.float32), np.array([1, 0]), 2, (3,))
    >>> ds.num_train, ds.num_test
    (4, 2)
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    input_shape: tuple

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if not isinstance(x, np.ndarray) or x.dtype != np.float32:
                raise TypeError(f"x_{split} must be a float32 numpy array, got {getattr(x, 'dtype', type(x))}")
            if not isinstance(y, np.ndarray) or y.dtype != np.int64 or y.ndim != 1:
                raise TypeError(f"y_{split} must be a 1-D int64 numpy array")
            if x.shape[0] != y.shape[0]:
                raise ValueError(f"x_{split} and y_{split} differ in length: {x.shape[0]} != {y.shape[0]}")
            if tuple(x.shape[1:]) != tuple(self.input_shape):
                raise ValueError(f"x_{split} examples have shape {x.shape[1:]}, input_shape says {self.input_shape}")
            if y.size and (y.min() < 0 or y.max() >= self.num_classes):
                raise ValueError(f"y_{split} must lie in [0, {self.num_classes - 1}]")

    @property
    def num_train(self) -> int:
        """Number of training examples."""
        return int(self.x_train.shape[0])

    @property
    def num_test(self) -> int:
        """Number of test examples."""
        return int(self.x_test.shape[0])


def normalize_images(x: np.ndarray, mean, std, scale: float = 255.0) -> np.ndarray:
    """Scale images ``(N, C, H, W)`` to [0, 1] by ``scale`` then normalise each channel.

    Parameters
    ----------
    x : numpy.ndarray
        Raw pixel values, shape ``(N, C, H, W)``.
    mean, std : sequence of float
        Per-channel mean and standard deviation of the [0, 1]-scaled images (one value per channel).
    scale : float
        The maximum raw pixel value (255 for 8-bit images).

    Returns
    -------
    numpy.ndarray
        ``float32`` array of the same shape.

    Examples
    --------
    >>> import numpy as np
    >>> normalize_images(np.full((1, 1, 2, 2), 255.0), mean=[0.5], std=[0.25])[0, 0, 0, 0]
    np.float32(2.0)
    """
    mean = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)
    if x.ndim != 4 or mean.shape[1] != x.shape[1]:
        raise ValueError(f"x must have shape (N, C, H, W) with C = {mean.shape[1]} channels, got {x.shape}")
    out = x.astype(np.float32)  # a fresh copy; the arithmetic below runs in place to spare memory
    out /= np.float32(scale)
    out -= mean
    out /= std
    return out


def stratified_split(x: np.ndarray, y: np.ndarray, seed: int, test_size: float = 0.2):
    """Fixed, seeded, stratified train/test split (scikit-learn's ``train_test_split``).

    Returns ``x_train, x_test, y_train, y_test``.

    Examples
    --------
    >>> import numpy as np
    >>> xtr, xte, ytr, yte = stratified_split(np.arange(10.0)[:, None], np.array([0, 1] * 5), seed=0)
    >>> len(ytr), len(yte), sorted(yte.tolist())
    (8, 2, [0, 1])
    """
    from sklearn.model_selection import train_test_split

    return train_test_split(x, y, test_size=test_size, random_state=seed, stratify=y)
