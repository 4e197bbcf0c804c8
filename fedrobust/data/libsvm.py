"""LIBSVM / svmlight files (a9a, w8a, or any pair) read with scikit-learn's svmlight reader.

Features are returned dense and as given (the LIBSVM binary sets are already scaled); labels are mapped to
class indices: ``{-1, +1}`` (or ``{0, 1}``) become 0/1, other label sets become their rank in sorted order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.checks import check_int, check_seed
from .splits import DatasetSplits, stratified_split

#: Known LIBSVM sets: name -> (train file, test file, number of features).
LIBSVM_SETS = {"a9a": ("a9a", "a9a.t", 123), "w8a": ("w8a", "w8a.t", 300)}


def labels_to_classes(y: np.ndarray) -> tuple[np.ndarray, int]:
    """Map raw svmlight labels to int64 class indices; returns ``(classes, num_classes)``.

    Examples
    --------
    >>> labels_to_classes(np.array([-1.0, 1.0, 1.0]))
    (array([0, 1, 1]), 2)
    >>> labels_to_classes(np.array([3.0, 1.0, 2.0]))
    (array([2, 0, 1]), 3)
    """
    values = np.unique(y)
    if len(values) <= 2 and set(values.tolist()) <= {-1.0, 1.0, 0.0}:
        return (y > 0).astype(np.int64), 2
    return np.searchsorted(values, y).astype(np.int64), int(len(values))


def load_libsvm(
    train_path,
    test_path=None,
    n_features: int | None = None,
    name: str = "libsvm",
    seed: int = 0,
) -> DatasetSplits:
    """Load svmlight files as dense ``(N, F)`` float32 features.

    Parameters
    ----------
    train_path : str or pathlib.Path
        The training file.
    test_path : str or pathlib.Path, optional
        The test file; when omitted, the training file is split 80/20 (stratified, seeded).
    n_features : int, optional
        Number of features (so that train and test agree); inferred from the files when omitted.
    name : str
        Name recorded in the result.
    seed : int
        Seed of the train/test split when ``test_path`` is omitted.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "toy")
    >>> with open(path, "w") as f:
    ...     _ = f.write("+1 1:0.5 3:1\\n-1 2:1\\n" * 5)
    >>> ds = load_libsvm(path, n_features=4)
    >>> ds.x_train.shape, ds.num_classes, ds.x_test[0].tolist() in ([0.5, 0, 1, 0], [0, 1, 0, 0])
    ((8, 4), 2, True)
    """
    from sklearn.datasets import load_svmlight_file, load_svmlight_files

    seed = check_seed(seed)
    if n_features is not None:
        n_features = check_int(n_features, "n_features", low=1)
    paths = [Path(p) for p in ([train_path] if test_path is None else [train_path, test_path])]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ValueError(f"{name}: missing svmlight file(s) {', '.join(missing)}")
    if test_path is None:
        x, y = load_svmlight_file(str(paths[0]), n_features=n_features, dtype=np.float32)
        y, num_classes = labels_to_classes(y)
        x_train, x_test, y_train, y_test = stratified_split(x.toarray(), y, seed)
    else:
        x_train, y_train, x_test, y_test = load_svmlight_files(
            [str(p) for p in paths], n_features=n_features, dtype=np.float32
        )
        y_all, num_classes = labels_to_classes(np.concatenate([y_train, y_test]))
        y_train, y_test = y_all[: len(y_train)], y_all[len(y_train) :]
        x_train, x_test = x_train.toarray(), x_test.toarray()
    x_train, x_test = (np.ascontiguousarray(a, dtype=np.float32) for a in (x_train, x_test))
    return DatasetSplits(name, x_train, y_train, x_test, y_test, num_classes, tuple(x_train.shape[1:]))


def load_libsvm_set(name: str, data_dir) -> DatasetSplits:
    """Load a known LIBSVM set (``"a9a"`` or ``"w8a"``) from ``data_dir`` (files ``a9a``/``a9a.t`` etc.)."""
    if name not in LIBSVM_SETS:
        raise ValueError(f"name must be one of {sorted(LIBSVM_SETS)}, got {name!r}")
    train, test, d = LIBSVM_SETS[name]
    data_dir = Path(data_dir)
    missing = [f for f in (train, test) if not (data_dir / f).is_file()]
    if missing:
        raise ValueError(
            f"{name}: missing {', '.join(missing)} in {data_dir}; put the LIBSVM files {train} and {test} there"
        )
    return load_libsvm(data_dir / train, data_dir / test, n_features=d, name=name)
