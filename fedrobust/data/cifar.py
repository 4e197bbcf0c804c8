"""CIFAR-10 from the python pickle batches (``cifar-10-batches-py``) in a user-given directory."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ._download import torchvision_download
from .splits import DatasetSplits, normalize_images

#: The six pickle batches of the python version of CIFAR-10.
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILES = ("test_batch",)
#: Usual per-channel mean/std of CIFAR-10 training images scaled to [0, 1].
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def read_cifar_batch(path) -> tuple[np.ndarray, np.ndarray]:
    """Read one pickle batch: images ``(N, 3, 32, 32)`` uint8 and labels ``(N,)`` int64.

    Examples
    --------
    >>> import os, pickle, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "test_batch")
    >>> with open(path, "wb") as f:
    ...     pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [3, 7]}, f)
    >>> x, y = read_cifar_batch(path)
    >>> x.shape, y.tolist()
    ((2, 3, 32, 32), [3, 7])
    """
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise ValueError(f"{path} is not a CIFAR-10 pickle batch (no 'data'/'labels' entries)")
    data = np.asarray(data, dtype=np.uint8)
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def _find_folder(data_dir: Path) -> Path:
    for folder in (data_dir, data_dir / "cifar-10-batches-py"):
        if all((folder / f).is_file() for f in CIFAR10_TRAIN_FILES + CIFAR10_TEST_FILES):
            return folder
    raise ValueError(
        f"cifar10: missing {', '.join(CIFAR10_TRAIN_FILES + CIFAR10_TEST_FILES)} in {data_dir} "
        f"(or {data_dir / 'cifar-10-batches-py'}); put the python-version batches there, "
        f"or pass download=True where torchvision is installed"
    )


def load_cifar10(data_dir, download: bool = False) -> DatasetSplits:
    """Load CIFAR-10 (50,000 train / 10,000 test) as normalised ``(N, 3, 32, 32)`` float32 images.

    Parameters
    ----------
    data_dir : str or pathlib.Path
        Folder holding ``data_batch_1`` .. ``data_batch_5`` and ``test_batch``, directly or in
        ``cifar-10-batches-py/``.
    download : bool
        Download with torchvision first when files are missing (needs torchvision).
    """
    data_dir = Path(data_dir)
    try:
        folder = _find_folder(data_dir)
    except ValueError:
        if not download:
            raise
        torchvision_download("cifar10", data_dir)
        folder = _find_folder(data_dir)
    splits = []
    for names in (CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILES):
        xs, ys = zip(*(read_cifar_batch(folder / n) for n in names))
        x = normalize_images(np.concatenate(xs), CIFAR10_MEAN, CIFAR10_STD)
        splits.append((x, np.concatenate(ys)))
    (x_train, y_train), (x_test, y_test) = splits
    return DatasetSplits("cifar10", x_train, y_train, x_test, y_test, 10, (3, 32, 32))
