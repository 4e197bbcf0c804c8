"""Dataset registry: one name per dataset, one entry point :func:`load_dataset`."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from . import builtin, cifar, idx, libsvm
from ..core.checks import check_seed
from .splits import DatasetSplits

#: A loader takes ``(data_dir, seed, download, **options)`` and returns :class:`DatasetSplits`.
Loader = Callable[..., DatasetSplits]


def _expected_files(name: str) -> str:
    if name in ("mnist", "fashion-mnist"):
        return ", ".join(f"{stem}[.gz]" for stem in idx.IDX_FILES.values())
    if name == "cifar10":
        return ", ".join(cifar.CIFAR10_TRAIN_FILES + cifar.CIFAR10_TEST_FILES)
    if name in libsvm.LIBSVM_SETS:
        return ", ".join(libsvm.LIBSVM_SETS[name][:2])
    return "its files"


def _needs_dir(name: str, data_dir) -> Path:
    if data_dir is None:
        raise ValueError(f"data-dir is required for {name!r}: the folder holding {_expected_files(name)}")
    return Path(data_dir)


def _builtin(fn):
    def loader(data_dir, seed, download):
        return fn(seed=seed)

    loader.__doc__ = fn.__doc__
    return loader


def _idx(name):
    return lambda data_dir, seed, download: idx.load_idx_dataset(name, _needs_dir(name, data_dir), download)


def _libsvm_set(name):
    return lambda data_dir, seed, download: libsvm.load_libsvm_set(name, _needs_dir(name, data_dir))


def _libsvm_generic(data_dir, seed, download, *, train_file=None, test_file=None, n_features=None):
    if train_file is None:
        raise ValueError("'libsvm' needs train_file (a path, relative to data_dir when data_dir is given)")
    base = Path(data_dir) if data_dir is not None else Path()
    test = None if test_file is None else base / test_file
    return libsvm.load_libsvm(base / train_file, test, n_features=n_features, name="libsvm", seed=seed)


#: Registered datasets: name -> loader. In-package sets come first; the rest read files from ``data_dir``.
DATASETS: dict[str, Loader] = {
    "mnist5k": _builtin(builtin.load_mnist5k),
    "digits": _builtin(builtin.load_digits),
    "breast-cancer": _builtin(builtin.load_breast_cancer),
    "mnist": _idx("mnist"),
    "fashion-mnist": _idx("fashion-mnist"),
    "cifar10": lambda data_dir, seed, download: cifar.load_cifar10(_needs_dir("cifar10", data_dir), download),
    "a9a": _libsvm_set("a9a"),
    "w8a": _libsvm_set("w8a"),
    "libsvm": _libsvm_generic,
}


def register_dataset(name: str, loader: Loader) -> None:
    """Add a dataset under ``name``; ``loader(data_dir, seed, download)`` must return :class:`DatasetSplits`.

    Examples
    --------
    >>> import numpy as np
    >>> def tiny(data_dir, seed, download):
    ...     x, y = np.zeros((2, 1), np.float32), np.array([0, 1])
    ...     return DatasetSplits("tiny", x, y, x, y, 2, (1,))
    >>> register_dataset("tiny", tiny)
    >>> load_dataset("tiny").num_train
    2
    >>> del DATASETS["tiny"]
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")
    if name in DATASETS:
        raise ValueError(f"dataset name {name!r} is already registered")
    if not callable(loader):
        raise TypeError("loader must be callable as loader(data_dir, seed, download)")
    DATASETS[name] = loader


def load_dataset(
    name: str,
    data_dir=None,
    seed: int = 0,
    download: bool = False,
    *,
    train_file=None,
    test_file=None,
    n_features: int | None = None,
) -> DatasetSplits:
    """Load a dataset by name.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`: ``"mnist5k"``, ``"digits"``, ``"breast-cancer"`` (in-package, no files),
        ``"mnist"``, ``"fashion-mnist"`` (IDX files), ``"cifar10"`` (python pickle batches), ``"a9a"``,
        ``"w8a"`` (LIBSVM files ``a9a``/``a9a.t``, ``w8a``/``w8a.t``) or ``"libsvm"`` (any svmlight files).
    data_dir : str or pathlib.Path, optional
        Folder with the dataset's files (ignored by the in-package sets).
    seed : int
        Seed of the fixed train/test split of the in-package sets (and of ``"libsvm"`` without a test file);
        sets that come with their own test split ignore it.
    download : bool
        For ``"mnist"``, ``"fashion-mnist"`` and ``"cifar10"``: download missing files with torchvision.
    train_file, test_file, n_features
        Only for ``"libsvm"``: file names (relative to ``data_dir`` when given) and feature count.

    Returns
    -------
    DatasetSplits

    Raises
    ------
    ValueError
        Unknown name, or missing files (a one-line message naming the files expected and where).

    Examples
    --------
    >>> ds = load_dataset("breast-cancer", seed=0)
    >>> ds.x_train.dtype, ds.y_train.dtype, ds.input_shape
    (dtype('float32'), dtype('int64'), (30,))
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    seed = check_seed(seed)
    if not isinstance(download, bool):
        raise TypeError(f"download must be a bool, got {download!r}")
    options = {"train_file": train_file, "test_file": test_file, "n_features": n_features}
    given = {k: v for k, v in options.items() if v is not None}
    if name == "libsvm":
        return DATASETS[name](data_dir, seed, download, **given)
    if given:
        raise ValueError(f"{', '.join(sorted(given))} only apply to the 'libsvm' dataset, not {name!r}")
    return DATASETS[name](data_dir, seed, download)
