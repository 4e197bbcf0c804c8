"""Dataset registry: one name per dataset, one entry point :func:`load_dataset`.

A name ending in ``:`` registers a family: ``hf:`` is every Hugging Face dataset, named
``hf:<name-or-folder>`` (:mod:`fedrobust.data.hf`).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

from . import builtin, cifar, idx, libsvm
from ..core.checks import check_seed
from .hf import HF_PREFIX
from .splits import DatasetSplits

__all__ = ["DATASETS", "check_dataset_options", "dataset_options", "dataset_problem", "load_dataset", "register_dataset"]

#: A loader takes ``(data_dir, seed, download, **options)`` and returns :class:`DatasetSplits`; the
#: loader of a family (a name ending in ``:``) takes ``(data_dir, seed, download, ref, **options)``,
#: ``ref`` being what follows the prefix.
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


def _hf(data_dir, seed, download, ref, *, subset=None, train_split="train", test_split=None, label_column=None,
        feature_columns=None):
    """any Hugging Face dataset: hf:<name-or-folder>, through flwr-datasets' FederatedDataset

    ``download`` is not consulted: the Hugging Face libraries fetch what their cache lacks unless
    ``HF_DATASETS_OFFLINE=1``; ``data_dir`` is their cache folder. See :func:`fedrobust.data.hf.load_hf_dataset`.
    """
    from .hf import load_hf_dataset

    return load_hf_dataset(ref, cache_dir=data_dir, seed=seed, subset=subset, train_split=train_split,
                           test_split=test_split, label_column=label_column, feature_columns=feature_columns)


#: Registered datasets: name -> loader. In-package sets come first; the rest read files from ``data_dir``;
#: ``hf:`` is the family of Hugging Face datasets.
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
    HF_PREFIX: _hf,
}


def _families() -> list[str]:
    return [name for name in DATASETS if name.endswith(":")]


def _resolve(name: str) -> tuple[Loader, str | None]:
    """The loader of ``name`` and, for a family member (``hf:<ref>``), the ``ref`` after the prefix."""
    if isinstance(name, str) and name in DATASETS and not name.endswith(":"):
        return DATASETS[name], None
    problem = dataset_problem(name)
    if problem is not None:
        raise ValueError(problem)
    prefix = next(p for p in _families() if name.startswith(p))
    return DATASETS[prefix], name[len(prefix):]


def dataset_problem(name: Any) -> str | None:
    """Why ``name`` names no dataset (one line), or None when it does: a key of :data:`DATASETS` or
    a family member such as ``hf:<name-or-folder>`` (whose existence is only known when it loads).

    Examples
    --------
    >>> dataset_problem("digits") is None, dataset_problem("hf:ylecun/mnist") is None
    (True, True)
    >>> dataset_problem("hf:")
    "unknown dataset 'hf:': name a dataset after the prefix, hf:<name>"
    """
    if isinstance(name, str) and name in DATASETS and not name.endswith(":"):
        return None
    families = _families()
    if isinstance(name, str):
        for prefix in families:
            if name.startswith(prefix):
                ref = name[len(prefix):]
                if ref.strip() and ref == ref.strip():
                    return None
                return f"unknown dataset {name!r}: name a dataset after the prefix, {prefix}<name>"
    plain = [n for n in DATASETS if not n.endswith(":")]
    return f"unknown dataset {name!r}; choose one of {', '.join(plain)}, or {', '.join(p + '<name>' for p in families)}"


def dataset_options(name: str) -> tuple[tuple[str, ...], bool]:
    """The options (``dataset-params``) dataset ``name``'s loader takes, and whether it takes any name.

    Examples
    --------
    >>> dataset_options("libsvm")
    (('train_file', 'test_file', 'n_features'), False)
    >>> dataset_options("hf:ylecun/mnist")[0]
    ('subset', 'train_split', 'test_split', 'label_column', 'feature_columns')
    >>> dataset_options("digits")
    ((), False)
    """
    loader, ref = _resolve(name)
    params = list(inspect.signature(loader).parameters.values())[3 if ref is None else 4:]
    names = tuple(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def check_dataset_options(name: str, options: Mapping[str, Any]) -> None:
    """Raise ValueError (one line) when dataset ``name`` takes no option of one of the ``options``' names.

    Examples
    --------
    >>> check_dataset_options("digits", {"label_column": "y"})
    Traceback (most recent call last):
    ...
    ValueError: dataset 'digits' takes no parameter 'label_column'; it takes: (none)
    """
    names, any_name = dataset_options(name)
    for key in options:
        if key not in names and not any_name:
            raise ValueError(f"dataset {name!r} takes no parameter {key!r}; it takes: {', '.join(names) or '(none)'}")


def register_dataset(name: str, loader: Loader) -> None:
    """Add a dataset under ``name``; ``loader(data_dir, seed, download)`` must return :class:`DatasetSplits`.

    Keyword parameters of the loader after these three are the dataset's options (``dataset-params``).
    A ``name`` ending in ``:`` registers a family: ``<name><ref>`` then loads with
    ``loader(data_dir, seed, download, ref, **options)``.

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
    taken = [p for p in _families() if name.startswith(p) or (name.endswith(":") and p.startswith(name))]
    if taken:
        raise ValueError(f"dataset name {name!r} clashes with the family {taken[0]}<name>")
    if not callable(loader):
        raise TypeError("loader must be callable as loader(data_dir, seed, download)")
    DATASETS[name] = loader


def load_dataset(name: str, data_dir=None, seed: int = 0, download: bool = False, **options) -> DatasetSplits:
    """Load a dataset by name.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`: ``"mnist5k"``, ``"digits"``, ``"breast-cancer"`` (in-package, no files),
        ``"mnist"``, ``"fashion-mnist"`` (IDX files), ``"cifar10"`` (python pickle batches), ``"a9a"``,
        ``"w8a"`` (LIBSVM files ``a9a``/``a9a.t``, ``w8a``/``w8a.t``) or ``"libsvm"`` (any svmlight files);
        or ``"hf:<name-or-folder>"``: a Hugging Face dataset through ``flwr_datasets.FederatedDataset``
        (:mod:`fedrobust.data.hf`).
    data_dir : str or pathlib.Path, optional
        Folder with the dataset's files (ignored by the in-package sets); for ``hf:`` the Hugging Face
        cache folder.
    seed : int
        Seed of the fixed train/test split of the in-package sets (and of ``"libsvm"`` without a test file,
        and ``hf:`` without a test split); sets that come with their own test split ignore it.
    download : bool
        For ``"mnist"``, ``"fashion-mnist"`` and ``"cifar10"``: download missing files with torchvision.
        ``hf:`` datasets do not consult it (``HF_DATASETS_OFFLINE=1`` keeps them offline).
    **options
        The dataset's own options (the run key ``dataset-params``; ``None`` = the default):
        ``train_file``, ``test_file``, ``n_features`` for ``"libsvm"`` (file names relative to
        ``data_dir`` when given, and the feature count); ``subset``, ``train_split``, ``test_split``,
        ``label_column``, ``feature_columns`` for ``hf:``. :func:`dataset_options` names them.

    Returns
    -------
    DatasetSplits

    Raises
    ------
    ValueError
        Unknown name or option, or missing files (a one-line message naming the files expected and where),
        or a Hugging Face dataset that cannot be loaded (naming it and the reason).

    Examples
    --------
    >>> ds = load_dataset("breast-cancer", seed=0)
    >>> ds.x_train.dtype, ds.y_train.dtype, ds.input_shape
    (dtype('float32'), dtype('int64'), (30,))
    """
    loader, ref = _resolve(name)
    seed = check_seed(seed)
    if not isinstance(download, bool):
        raise TypeError(f"download must be a bool, got {download!r}")
    given = {k: v for k, v in options.items() if v is not None}
    check_dataset_options(name, given)
    if ref is None:
        return loader(data_dir, seed, download, **given)
    return loader(data_dir, seed, download, ref, **given)
