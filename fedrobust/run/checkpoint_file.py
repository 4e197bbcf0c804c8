"""The bytes of one checkpoint file: a header line with the format and a SHA-256, then the payload.

Every file a checkpoint consists of (``server.pt`` and each client state file) is written by
:func:`write_checkpoint_file` as one header line followed by the payload::

    fedrobust-checkpoint 2 sha256=<64 hex digits> size=<payload bytes>\\n<payload>

atomically (:func:`atomic_write`: a temporary file in the same folder, fsync, :func:`os.replace`).
:func:`read_checkpoint_file` returns the payload only when the header is there, names this
format, and the payload has that size and SHA-256; anything else (flipped bits, a truncated or
extended file, garbage, a file from before checksums) is a :class:`~fedrobust.core.errors.CheckpointError`
naming the file and what is wrong with it, in one line.

Examples
--------
>>> data = seal(b"payload")
>>> data.splitlines()[0][:24]
b'fedrobust-checkpoint 2 s'
>>> unseal(data, "f.bin")
b'payload'
>>> unseal(data[:-1], "f.bin")
Traceback (most recent call last):
...
fedrobust.core.errors.CheckpointError: checkpoint: f.bin is truncated (6 of 7 payload bytes); it cannot be resumed: start afresh in an empty checkpoint-dir
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from ..core.errors import CheckpointError

__all__ = [
    "FORMAT",
    "atomic_write",
    "seal",
    "unseal",
    "write_checkpoint_file",
    "read_checkpoint_file",
]

FORMAT = 2
"""Version of the checkpoint layout (1: the files before the header and checksum)."""

_MAGIC = b"fedrobust-checkpoint "
_HEADER = re.compile(rb"^fedrobust-checkpoint (\d+) sha256=([0-9a-f]{64}) size=(\d+)$")
_MAX_HEADER = 160  # bytes; the header line is 113 to 130 bytes
_START_AFRESH = "it cannot be resumed: start afresh in an empty checkpoint-dir"


def atomic_write(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part.

    The bytes go to a temporary file in the same folder, are flushed to disk (fsync), and replace
    ``path`` in one :func:`os.replace`; the folder is then synced too where the system allows it,
    so the new name survives a crash.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)
    return path


def _sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a system that cannot open folders (Windows): the rename is all there is
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def seal(payload: bytes) -> bytes:
    """``payload`` behind its header line (format, SHA-256, size)."""
    digest = hashlib.sha256(payload).hexdigest()
    return b"%s%d sha256=%s size=%d\n" % (_MAGIC, FORMAT, digest.encode(), len(payload)) + payload


def unseal(data: bytes, path: str | Path) -> bytes:
    """The payload of ``data`` (the bytes of the file ``path``), once its header is checked.

    Raises
    ------
    CheckpointError
        No header (garbage, or a file written before checksums), another format, or a payload
        whose size or SHA-256 is not the header's; the one-line message names ``path``.
    """
    end = data.find(b"\n", 0, _MAX_HEADER)
    if not data.startswith(_MAGIC):
        raise CheckpointError(
            f"checkpoint: {path} has no fedrobust checkpoint header (not a checkpoint, or one written "
            f"before checksums, format 1, which cannot be verified); {_START_AFRESH}"
        )
    match = _HEADER.match(data[:end]) if end >= 0 else None
    if match is None:
        raise CheckpointError(f"checkpoint: {path} has a damaged header; {_START_AFRESH}")
    version, digest, size = int(match.group(1)), match.group(2).decode(), int(match.group(3))
    if version != FORMAT:
        raise CheckpointError(
            f"checkpoint: {path} is of format {version}; this fedrobust reads format {FORMAT}; {_START_AFRESH}"
        )
    payload = data[end + 1:]
    if len(payload) < size:
        raise CheckpointError(f"checkpoint: {path} is truncated ({len(payload)} of {size} payload bytes); {_START_AFRESH}")
    if len(payload) > size:
        raise CheckpointError(f"checkpoint: {path} has {len(payload) - size} bytes past its payload; {_START_AFRESH}")
    if hashlib.sha256(payload).hexdigest() != digest:
        raise CheckpointError(
            f"checkpoint: {path} is damaged (its SHA-256 does not match its header); {_START_AFRESH}"
        )
    return payload


def write_checkpoint_file(path: str | Path, payload: bytes) -> Path:
    """Write ``payload`` with its header to ``path`` (atomically, :func:`atomic_write`); return the path."""
    return atomic_write(path, seal(payload))


def read_checkpoint_file(path: str | Path) -> bytes:
    """The checked payload of the checkpoint file ``path`` (see :func:`unseal`).

    Raises
    ------
    CheckpointError
        The file cannot be read, or fails :func:`unseal`'s checks.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise CheckpointError(f"checkpoint: cannot read {path}: {err.strerror or err}") from None
    return unseal(data, path)
