"""Any Hugging Face dataset, through flwr-datasets' ``FederatedDataset``: the dataset ``hf:<ref>``.

``<ref>`` is a dataset on the Hugging Face Hub (``hf:ylecun/mnist``; ``subset`` picks a configuration)
or a local folder: one that ``datasets.load_dataset`` reads (parquet, arrow, csv, json or image files,
the splits named by file or folder, e.g. ``train.parquet`` and ``test.parquet``), or one written by
``DatasetDict.save_to_disk`` / ``Dataset.save_to_disk``. Both splits come from
``FederatedDataset(...).load_split(split)``, which hands its extra arguments to
``datasets.load_dataset``: a Hub dataset is downloaded into the Hugging Face cache (``data-dir`` when
given, else ``HF_DATASETS_CACHE`` or ``HF_HOME``) unless it is there already, and
``HF_DATASETS_OFFLINE=1`` keeps everything offline. flwr-datasets sends a usage event when a split is
loaded unless ``FLWR_TELEMETRY_ENABLED=0``. The splits are converted to :class:`DatasetSplits`:

- **Features**: the image column (``image``, ``img``, or the one column of image type), as ``(N, C, H, W)``
  float32: PIL images (all grey: one channel, else RGB: three), or nested lists / arrays of shape
  ``(H, W)``, ``(H, W, C)`` or ``(C, H, W)`` (channels first only when the first axis is 1 or 3 and the last
  is not). Pixels are scaled to [0, 1] (8-bit values by 255), then each channel is normalised with the
  mean and standard deviation of the training split, as ``digits`` is. Without an image column: the
  numeric (``Value``) columns other than the label (or one column of numeric vectors) as ``(N, F)``,
  standardised with training-split statistics, as ``breast-cancer`` is. ``feature_columns`` names the
  column(s).
- **Labels**: the label column (``label``, ``labels``, ``fine_label``, or the one column of
  ``ClassLabel`` type; ``label_column`` names it): a ``ClassLabel``'s indices, with its number of names
  as ``num_classes``; any other values (integers, strings) are numbered in sorted order.
- **Splits**: ``train_split`` (``train``) and ``test_split`` (default: ``test`` when the dataset has one;
  otherwise the train split is split 80/20, stratified by label, with the seed, as the in-package sets are).

A dataset that cannot be loaded (not found, not cached while offline, a split or column missing) gives
one ``ValueError`` line naming it and the reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .splits import DatasetSplits, normalize_images, stratified_split

__all__ = ["HF_PREFIX", "IMAGE_COLUMNS", "LABEL_COLUMNS", "load_hf_dataset"]

#: The dataset-name prefix of a Hugging Face dataset: ``hf:<name-or-folder>``.
HF_PREFIX = "hf:"
#: Columns taken as the label, in this order, when ``label_column`` is not given.
LABEL_COLUMNS = ("label", "labels", "fine_label")
#: Columns taken as the image, in this order, when ``feature_columns`` is not given.
IMAGE_COLUMNS = ("image", "img")


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _source(ref: str) -> dict[str, Any]:
    """``FederatedDataset``'s ``dataset`` (and ``data_files``) for ``ref``; ``save_to_disk`` folders read as arrow."""
    folder = Path(ref).expanduser()
    if folder.is_dir() and (folder / "dataset_dict.json").is_file():  # DatasetDict.save_to_disk
        splits = json.loads((folder / "dataset_dict.json").read_text()).get("splits", [])
        return {"dataset": "arrow", "data_files": {s: str(folder / s / "*.arrow") for s in splits}}
    if folder.is_dir() and (folder / "state.json").is_file() and (folder / "dataset_info.json").is_file():
        return {"dataset": "arrow", "data_files": {"train": str(folder / "*.arrow")}}  # Dataset.save_to_disk
    return {"dataset": ref}


def _load_splits(ref: str, name: str, cache_dir, subset, train_split: str, test_split: str | None):
    """The train split and the test split (None: the dataset has no ``test`` and none was named)."""
    from flwr_datasets import FederatedDataset

    kwargs = _source(ref)
    if cache_dir is not None:
        kwargs["cache_dir"] = str(cache_dir)
    try:
        fds = FederatedDataset(**kwargs, subset=subset, partitioners={train_split: 1}, shuffle=False)
        train = fds.load_split(train_split)
    except Exception as err:  # noqa: BLE001 - any failure of the download or the reader is the user's to see
        raise ValueError(f"dataset {name!r} could not be loaded through flwr_datasets.FederatedDataset: "
                         f"{_one_line(err)}") from None
    try:
        test = fds.load_split(test_split or "test")
    except ValueError as err:  # the split is not there (the dataset itself is loaded by now)
        if test_split is not None:
            raise ValueError(f"dataset {name!r}: {_one_line(err)}") from None
        test = None
    return train, test


def _label_column(train, label_column: str | None, name: str) -> str:
    import datasets

    columns = list(train.column_names)
    if label_column is not None:
        if label_column not in columns:
            raise ValueError(
                f"dataset {name!r} has no column {label_column!r} (label_column); columns: {', '.join(columns)}"
            )
        return label_column
    for candidate in LABEL_COLUMNS:
        if candidate in columns:
            return candidate
    typed = [c for c in columns if isinstance(train.features[c], datasets.ClassLabel)]
    if len(typed) == 1:
        return typed[0]
    raise ValueError(
        f"dataset {name!r}: no label column found (looked for {', '.join(LABEL_COLUMNS)} or one ClassLabel column); "
        f"name it with dataset-params 'label_column=...'; columns: {', '.join(columns)}"
    )


def _is_numeric_value(feature) -> bool:
    import datasets

    if isinstance(feature, datasets.ClassLabel):
        return True
    if not isinstance(feature, datasets.Value):
        return False
    dtype = feature.dtype
    return dtype == "bool" or dtype.startswith(("int", "uint", "float"))


def _feature_columns(train, label: str, feature_columns: str | None, name: str) -> list[str]:
    import datasets

    columns = [c for c in train.column_names if c != label]
    if feature_columns is not None:
        chosen = [c.strip() for c in str(feature_columns).split(":") if c.strip()]
        missing = [c for c in chosen if c not in train.column_names]
        if missing or not chosen:
            raise ValueError(f"dataset {name!r} has no column {', '.join(missing) or repr(feature_columns)} "
                             f"(feature_columns); columns: {', '.join(train.column_names)}")
        return chosen
    for candidate in IMAGE_COLUMNS:
        if candidate in columns:
            return [candidate]
    images = [c for c in columns if isinstance(train.features[c], datasets.Image)]
    if len(images) == 1:
        return images
    numeric = [c for c in columns if isinstance(train.features[c], datasets.Value) and _is_numeric_value(
        train.features[c])]
    if numeric:  # other ClassLabel columns (e.g. a coarse label) are left out: they are targets, not features
        return numeric
    arrays = [c for c in columns if not isinstance(train.features[c], (datasets.Value, datasets.ClassLabel))]
    if len(arrays) == 1:
        return arrays
    raise ValueError(
        f"dataset {name!r}: no feature column found (looked for {', '.join(IMAGE_COLUMNS)}, one image column, or "
        f"numeric columns); name them with dataset-params 'feature_columns=a:b'; "
        f"columns: {', '.join(train.column_names)}"
    )


def _pil_images(splits, column: str, name: str) -> list[np.ndarray]:
    """The PIL images of each split as uint8 ``(N, C, H, W)``: one channel when every image is grey, else RGB."""
    decoded = [list(split[column]) for split in splits]
    mode = "L" if all(image.mode in ("1", "L") for images in decoded for image in images) else "RGB"
    out = []
    for images in decoded:
        arrays = [np.asarray(image if image.mode == mode else image.convert(mode), dtype=np.uint8) for image in images]
        shapes = sorted({a.shape for a in arrays})
        if len(shapes) > 1:
            sizes = ", ".join(map(str, shapes[:3])) + (", ..." if len(shapes) > 3 else "")
            raise ValueError(f"dataset {name!r}: the images of column {column!r} differ in size ({sizes}); "
                             "resize them to one size first")
        x = np.stack(arrays)
        out.append(x[:, None, :, :] if x.ndim == 3 else x.transpose(0, 3, 1, 2))
    if len(out) == 2 and out[0].shape[1:] != out[1].shape[1:]:
        raise ValueError(
            f"dataset {name!r}: train images have shape {out[0].shape[1:]}, test images {out[1].shape[1:]}"
        )
    return out


def _numeric(split, columns: list[str], name: str) -> np.ndarray:
    """The columns as one numeric array: ``(N, F)`` for scalar columns, ``(N, ...)`` for one array column."""
    table = split.with_format("numpy", columns=columns)
    try:
        if len(columns) == 1:
            x = np.asarray(table[columns[0]])
        else:
            x = np.stack([np.asarray(table[c]) for c in columns], axis=1)
    except ValueError as err:
        raise ValueError(f"dataset {name!r}: columns {', '.join(columns)} do not form one numeric array ({_one_line(err)})") from None
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ValueError(
            f"dataset {name!r}: column(s) {', '.join(columns)} hold {x.dtype} values, not numbers of one shape; "
            "name numeric or image columns with dataset-params 'feature_columns=...'"
        )
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise ValueError(f"dataset {name!r}: column(s) {', '.join(columns)} hold missing or infinite values")
    return x[:, None] if x.ndim == 1 else x


def _as_images(x: np.ndarray) -> np.ndarray:
    """Per-example ``(H, W)``, ``(H, W, C)`` or ``(C, H, W)`` arrays as ``(N, C, H, W)``."""
    if x.ndim == 3:
        return x[:, None, :, :]
    channels_first = x.shape[1] in (1, 3) and x.shape[3] not in (1, 3, 4)
    return x if channels_first else x.transpose(0, 3, 1, 2)


def _pixel_scale(*arrays: np.ndarray) -> float:
    if np.issubdtype(arrays[0].dtype, np.floating) or arrays[0].dtype == bool:
        return 1.0
    top = max(float(a.max()) for a in arrays if a.size)
    return 255.0 if top <= 255 else top


def _features(train, test, columns: list[str], name: str) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """Raw features of both splits (test may be None) and whether they are images ``(N, C, H, W)``."""
    import datasets

    splits = [s for s in (train, test) if s is not None]
    if len(columns) == 1 and isinstance(train.features[columns[0]], datasets.Image):
        raw = _pil_images(splits, columns[0], name)
        images = True
    else:
        if len(columns) > 1 and not all(_is_numeric_value(train.features[c]) for c in columns):
            raise ValueError(f"dataset {name!r}: feature_columns {':'.join(columns)} must all hold numbers "
                             "(or name one image or array column)")
        raw = [_numeric(s, columns, name) for s in splits]
        if raw[0].ndim not in (2, 3, 4):
            raise ValueError(f"dataset {name!r}: column {columns[0]!r} holds arrays of {raw[0].ndim - 1} dimensions; "
                             "fedrobust takes vectors, (H, W), (H, W, C) or (C, H, W)")
        images = raw[0].ndim > 2
        if images:
            raw = [_as_images(r) for r in raw]
    if test is not None and raw[0].shape[1:] != raw[1].shape[1:]:
        raise ValueError(f"dataset {name!r}: train examples have shape {raw[0].shape[1:]}, test examples {raw[1].shape[1:]}")
    return raw[0], (raw[1] if test is not None else None), images


def _labels(train, test, column: str, name: str) -> tuple[np.ndarray, np.ndarray | None, int]:
    import datasets

    feature = train.features[column]
    values = [np.asarray(s[column]) for s in (train, test) if s is not None]
    if any(v.dtype == object for v in values):
        raise ValueError(f"dataset {name!r}: label column {column!r} has missing or mixed values")
    if isinstance(feature, datasets.ClassLabel):
        k = int(feature.num_classes)
        codes = [v.astype(np.int64) for v in values]
        if any(((c < 0) | (c >= k)).any() for c in codes):
            raise ValueError(f"dataset {name!r}: label column {column!r} has values outside its {k} classes "
                             "(e.g. -1 for unlabelled examples)")
    else:
        joined = np.concatenate(values)
        if np.issubdtype(joined.dtype, np.floating) and not np.all(np.isfinite(joined) & (joined == np.round(joined))):
            raise ValueError(f"dataset {name!r}: label column {column!r} holds non-integer numbers; "
                             "fedrobust needs class labels")
        classes = np.unique(joined)
        codes = [np.searchsorted(classes, v).astype(np.int64) for v in values]
        k = int(len(classes))
    if k < 2:
        raise ValueError(f"dataset {name!r}: label column {column!r} has {k} class(es); fedrobust needs at least 2")
    return codes[0], (codes[1] if test is not None else None), k


def _normalise(x_train: np.ndarray, x_test: np.ndarray, images: bool) -> tuple[np.ndarray, np.ndarray]:
    if images:
        scale = np.float32(_pixel_scale(x_train, x_test))
        xtr, xte = (a.astype(np.float32) / scale for a in (x_train, x_test))
        mean = xtr.mean(axis=(0, 2, 3), dtype=np.float64)
        std = xtr.std(axis=(0, 2, 3), dtype=np.float64)
        std = np.where(std > 0, std, 1.0)
        return tuple(normalize_images(a, mean, std, scale=1.0) for a in (xtr, xte))
    from sklearn.preprocessing import StandardScaler

    xtr, xte = (a.astype(np.float64) for a in (x_train, x_test))
    scaler = StandardScaler().fit(xtr)
    return tuple(scaler.transform(a).astype(np.float32) for a in (xtr, xte))


def load_hf_dataset(
    ref: str,
    cache_dir=None,
    seed: int = 0,
    *,
    subset: str | None = None,
    train_split: str = "train",
    test_split: str | None = None,
    label_column: str | None = None,
    feature_columns: str | None = None,
) -> DatasetSplits:
    """Load the Hugging Face dataset ``ref`` (a Hub name or a local folder) as :class:`DatasetSplits`.

    Parameters
    ----------
    ref : str
        What follows ``hf:``: a dataset name on the Hub or a local folder (see the module docstring).
    cache_dir : str or pathlib.Path, optional
        ``datasets.load_dataset``'s ``cache_dir`` (the run key ``data-dir``); None: the Hugging Face default.
    seed : int
        Seed of the 80/20 split when the dataset has no test split.
    subset : str, optional
        The dataset's configuration (``FederatedDataset``'s ``subset``).
    train_split, test_split : str
        Split names; ``test_split`` defaults to ``test`` when there is one, else to an 80/20 split of the train split.
    label_column : str, optional
        The label column (default: ``label``, ``labels``, ``fine_label``, or the one ``ClassLabel`` column).
    feature_columns : str, optional
        The feature column(s), several joined by ``:`` (default: ``image``, ``img``, the one image column,
        else every numeric column but the label).

    Returns
    -------
    DatasetSplits
        Named ``hf:<ref>``.

    Raises
    ------
    ValueError
        One line naming the dataset: it could not be loaded (and why), or a split or column is missing
        or unusable.
    """
    name = HF_PREFIX + ref
    if not isinstance(ref, str) or not ref.strip():
        raise ValueError(f"dataset {name!r}: name a Hugging Face dataset or a folder after {HF_PREFIX!r}")
    text = {k: None if v is None else str(v) for k, v in
            (("subset", subset), ("train_split", train_split), ("test_split", test_split),
             ("label_column", label_column), ("feature_columns", feature_columns))}
    train, test = _load_splits(ref, name, cache_dir, text["subset"], text["train_split"], text["test_split"])
    label = _label_column(train, text["label_column"], name)
    if test is not None and label not in test.column_names:
        raise ValueError(f"dataset {name!r}: the test split has no column {label!r}")
    columns = _feature_columns(train, label, text["feature_columns"], name)
    x_train, x_test, images = _features(train, test, columns, name)
    y_train, y_test, num_classes = _labels(train, test, label, name)
    if test is None:
        try:
            x_train, x_test, y_train, y_test = stratified_split(x_train, y_train, seed)
        except ValueError as err:
            raise ValueError(f"dataset {name!r} has no test split, and its train split cannot be split 80/20 "
                             f"stratified: {_one_line(err)}") from None
    x_train, x_test = _normalise(x_train, x_test, images)
    return DatasetSplits(name, x_train, y_train, x_test, y_test, num_classes, tuple(x_train.shape[1:]))
