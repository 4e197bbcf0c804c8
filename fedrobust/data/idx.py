"""MNIST and Fashion-MNIST from their IDX files (gzipped or not) in a user-given directory."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ._download import TORCHVISION_CLASSES, torchvision_download
from .builtin import MNIST_MEAN, MNIST_STD
from .splits import DatasetSplits, normalize_images

#: The four IDX files of MNIST and Fashion-MNIST (each may also end in ``.gz``).
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}

#: Per-dataset channel mean/std of the [0, 1]-scaled images.
IDX_STATS = {"mnist": (MNIST_MEAN, MNIST_STD), "fashion-mnist": ((0.2860,), (0.3530,))}

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """Read one IDX file (``.gz`` or plain, decided by the file's first bytes).

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "x-idx1-ubyte")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 8, 9]))
    >>> read_idx(path)
    array([7, 8, 9], dtype=uint8)
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()})")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - offset != expected:
        raise ValueError(f"{path}: header announces shape {shape} ({expected} bytes), file holds {len(raw) - offset}")
    return np.frombuffer(raw, dtype=dtype, offset=offset).reshape(shape).astype(dtype.newbyteorder("="))


def find_idx_files(name: str, data_dir: Path) -> dict[str, Path]:
    """Locate the four IDX files in ``data_dir`` or torchvision's ``data_dir/<Class>/raw`` layout."""
    folders = [data_dir, data_dir / TORCHVISION_CLASSES[name][1]]
    found = {}
    for key, stem in IDX_FILES.items():
        for folder in folders:
            for fname in (stem, stem + ".gz"):
                if (folder / fname).is_file():
                    found[key] = folder / fname
                    break
            if key in found:
                break
    missing = [IDX_FILES[k] + "[.gz]" for k in IDX_FILES if k not in found]
    if missing:
        raise ValueError(
            f"{name}: missing {', '.join(missing)} in {data_dir} (or {folders[1]}); "
            f"put the four IDX files there, or pass download=True where torchvision is installed"
        )
    return found


def load_idx_dataset(name: str, data_dir, download: bool = False) -> DatasetSplits:
    """Load ``"mnist"`` or ``"fashion-mnist"`` from IDX files as ``(N, 1, 28, 28)`` normalised images.

    Parameters
    ----------
    name : {"mnist", "fashion-mnist"}
        Which dataset (both use the same file names; the name picks the normalisation).
    data_dir : str or pathlib.Path
        Folder holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``
        and ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``), directly or under torchvision's
        ``MNIST/raw`` / ``FashionMNIST/raw``.
    download : bool
        Download with torchvision first when files are missing (needs torchvision).
    """
    if name not in IDX_STATS:
        raise ValueError(f"name must be one of {sorted(IDX_STATS)}, got {name!r}")
    data_dir = Path(data_dir)
    try:
        files = find_idx_files(name, data_dir)
    except ValueError:
        if not download:
            raise
        torchvision_download(name, data_dir)
        files = find_idx_files(name, data_dir)
    arrays = {key: read_idx(path) for key, path in files.items()}
    mean, std = IDX_STATS[name]
    x_train, x_test = (normalize_images(arrays[k][:, None, :, :], mean, std) for k in ("x_train", "x_test"))
    y_train, y_test = (arrays[k].astype(np.int64) for k in ("y_train", "y_test"))
    return DatasetSplits(name, x_train, y_train, x_test, y_test, 10, tuple(x_train.shape[1:]))
