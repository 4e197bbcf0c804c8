"""Output paths, checked before any work: :func:`check_output_dir` and :func:`check_output_file`.

A run writes its results only after the last round, and a sweep or a report only after reading
and computing; a path it cannot write would lose all of that. Both checks create the missing
folders (as the writer would) and write and delete a probe file there, so what they accept can be
written, whatever the permission bits, mounts or special file systems (``/proc``) say.

Examples
--------
>>> import tempfile, pathlib
>>> with tempfile.TemporaryDirectory() as tmp:
...     check_output_dir(pathlib.Path(tmp) / "sweep", "--output")
...     check_output_file(pathlib.Path(tmp), "output")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
fedrobust.core.errors.ConfigError: output: ... is a folder, not a file
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import ConfigError

__all__ = ["check_output_dir", "check_output_file"]


def check_output_dir(path: str | Path, key: str) -> None:
    """Make sure the folder ``path`` exists (created when missing) and takes new files.

    Raises
    ------
    ConfigError
        One line: ``key``, the path and why it cannot be written.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{key}: {path} is a file, not a folder")
    problem = _unwritable(path)
    if problem:
        raise ConfigError(f"{key}: cannot write to {path}: {problem}")


def check_output_file(path: str | Path, key: str) -> None:
    """Make sure the file ``path`` can be written: not a folder, and its folder takes new files.

    Raises
    ------
    ConfigError
        One line: ``key``, the path and why it cannot be written.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{key}: {path} is a folder, not a file")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{key}: cannot write to {path}: permission denied")
    problem = _unwritable(path.parent)
    if problem:
        raise ConfigError(f"{key}: cannot write to {path}: {problem}")


def _unwritable(folder: Path) -> str | None:
    """Why no file can be created in ``folder`` (created when missing), or None."""
    if folder.exists() and not folder.is_dir():
        return f"{folder} is a file, not a folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".fedrobust-write-check.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        where = f" ({err.filename})" if err.filename and Path(err.filename) != folder else ""
        return f"{err.strerror or err}{where}"
    return None
