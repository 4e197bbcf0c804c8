"""Flower's legacy wire format for ndarrays (``.npy`` bytes), encoded and decoded without its overhead.

Flower's ``ndarrays_to_parameters`` / ``parameters_to_ndarrays`` write and read every array with
``np.save`` / ``np.load`` through a ``BytesIO``: for each array they format and parse the
``.npy`` header (an ``ast.literal_eval``) and copy the data two or three times. A round sends
the same few shapes over and over, so most of that work repeats. The functions here give the
same bytes and the same arrays, byte for byte, and are drop-in replacements:

- :func:`ndarray_to_bytes` writes the header ``np.save`` would write (made by ``np.save`` itself,
  once per dtype and shape, then kept) followed by the array's data, in one copy;
- :func:`bytes_to_ndarray` reads a header seen before from a small bounded cache (numpy's own
  header reader parses each new one) and copies the data once into a fresh, writable array.

Anything off the common path goes through Flower's own functions unchanged, so what they accept
and the errors they raise for untrusted bytes stay exactly theirs: arrays that are not
C-contiguous plain ndarrays, Fortran-order or object headers, a payload shorter than its header
says, bytes that are not ``.npy`` at all (``np.load`` then raises, or reads a ``.npz``, which the
reply checks reject).

Examples
--------
>>> import numpy as np
>>> from flwr.common import ndarrays_to_parameters as flower_encode
>>> arrays = [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(2)]
>>> ndarrays_to_parameters(arrays) == flower_encode(arrays)
True
>>> [a.tolist() for a in parameters_to_ndarrays(ndarrays_to_parameters(arrays))]
[[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], [1.0, 1.0]]
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Sequence

import numpy as np
from flwr.common import Parameters
from flwr.common import bytes_to_ndarray as _flower_bytes_to_ndarray
from flwr.common import ndarray_to_bytes as _flower_ndarray_to_bytes

__all__ = ["ndarray_to_bytes", "bytes_to_ndarray", "canonical_npy", "ndarrays_to_parameters", "parameters_to_ndarrays"]

_MAGIC = b"\x93NUMPY"
_MAX_HEADER = 10_000
"""The longest header read on the fast path (numpy's own default limit on ``.npy`` headers)."""
_CACHE = 256
"""Headers kept per process (distinct dtypes and shapes: a model has a few; an attacker sending
new ones each time only makes its own replies take the slow path)."""


@functools.lru_cache(maxsize=_CACHE)
def _header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """The ``.npy`` header ``np.save`` writes for a C-contiguous array of ``dtype`` and ``shape``."""
    probe = np.zeros(shape, dtype=dtype)  # the header depends on dtype and shape only
    full = _flower_ndarray_to_bytes(probe)
    return full[: len(full) - probe.nbytes]


def ndarray_to_bytes(array: np.ndarray) -> bytes:
    """The bytes Flower's ``ndarray_to_bytes`` (``np.save``, no pickle) gives for ``array``.

    Examples
    --------
    >>> from flwr.common import ndarray_to_bytes as flower
    >>> a = np.arange(5, dtype=np.int64)
    >>> ndarray_to_bytes(a) == flower(a), ndarray_to_bytes(a[::2]) == flower(a[::2])
    (True, True)
    """
    if type(array) is not np.ndarray or not array.flags.c_contiguous or array.dtype.hasobject:
        return _flower_ndarray_to_bytes(array)
    return b"".join((_header(array.dtype, array.shape), array.reshape(-1).view(np.uint8).data))


@functools.lru_cache(maxsize=_CACHE)
def _parsed(header: bytes) -> tuple[np.dtype, tuple[int, ...], int] | None:
    """(dtype, shape, item count) of a ``.npy`` header, or None when it must take numpy's own path
    (Fortran order; an object, structured or subarray dtype; a header numpy refuses)."""
    stream = io.BytesIO(header)
    try:
        version = np.lib.format.read_magic(stream)
        if version not in ((1, 0), (2, 0)):
            return None
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = reader(stream)
    except Exception:  # noqa: BLE001 - np.load raises its own error for it on the slow path
        return None
    if fortran_order or dtype.hasobject or dtype.names is not None or dtype.subdtype is not None or stream.read(1):
        return None  # structured and subarray dtypes too: np.load's own path shapes those
    if any(n < 0 for n in shape):
        return None  # np.load's error
    return dtype, tuple(shape), math.prod(shape)


def bytes_to_ndarray(data: bytes, copy: bool = True) -> np.ndarray:
    """The array Flower's ``bytes_to_ndarray`` (``np.load``, no pickle) reads from ``data``.

    With ``copy=False`` the common case (a plain C-order ``.npy``) is a read-only view of
    ``data``, for a reader that only copies it out (the same values; no copy made here).

    Examples
    --------
    >>> b = ndarray_to_bytes(np.eye(2, dtype=np.float32))
    >>> bytes_to_ndarray(b).tolist(), bytes_to_ndarray(b).flags.writeable
    ([[1.0, 0.0], [0.0, 1.0]], True)
    >>> bytes_to_ndarray(b[:-1])
    Traceback (most recent call last):
    ...
    ValueError: EOF: reading array data, expected 16 bytes got 15
    >>> bytes_to_ndarray(b, copy=False).flags.writeable
    False
    """
    view = memoryview(data)
    start, parsed = _header_of(view)
    if parsed is None:
        return _flower_bytes_to_ndarray(data)
    dtype, shape, count = parsed
    if len(view) - start < count * dtype.itemsize:
        return _flower_bytes_to_ndarray(data)  # short: np.load's "EOF" error
    if not copy:
        viewed = np.frombuffer(view, dtype, count, start).reshape(shape)
        viewed.flags.writeable = False  # also over a bytearray: the view never writes the message
        return viewed
    out = np.empty(shape, dtype=dtype)
    out.reshape(-1).view(np.uint8)[:] = np.frombuffer(view, np.uint8, count * dtype.itemsize, start)
    return out


def canonical_npy(data: bytes) -> tuple[np.dtype, tuple[int, ...]] | None:
    """(dtype, shape) when ``data`` is exactly what :func:`ndarray_to_bytes` (``np.save``) writes
    for an array of that dtype and shape, else None.

    Such bytes are what ``np.save`` would write again for the array they decode to, so they can be
    passed on as they are where those bytes are wanted (a Message-API ``Array``) instead of being
    decoded and encoded again. A header numpy reads but does not write so, a Fortran-order or
    object array, or a payload longer or shorter than its header says: None.

    Examples
    --------
    >>> b = ndarray_to_bytes(np.arange(3, dtype=np.float32))
    >>> canonical_npy(b)
    (dtype('float32'), (3,))
    >>> canonical_npy(b + b"x"), canonical_npy(b[:-1]), canonical_npy(b"not npy")
    (None, None, None)
    """
    if not isinstance(data, bytes):
        return None
    view = memoryview(data)
    start, parsed = _header_of(view)
    if parsed is None:
        return None
    dtype, shape, count = parsed
    if len(view) != start + count * dtype.itemsize or view[:start] != _header(dtype, shape):
        return None
    return dtype, shape


def _header_of(view: memoryview) -> tuple[int, tuple[np.dtype, tuple[int, ...], int] | None]:
    """Where a ``.npy`` payload's data begins, and its header's :func:`_parsed` fields (None: off
    the fast path)."""
    start = _data_start(view)
    return start, (_parsed(bytes(view[:start])) if 0 < start <= _MAX_HEADER else None)


def _data_start(view: memoryview) -> int:
    """Where a ``.npy`` payload's data begins (after magic, version, length and header), or 0 when
    ``view`` does not start like a version 1 or 2 ``.npy`` file."""
    if len(view) < 12 or view[:6] != _MAGIC:
        return 0
    major = view[6]
    if major == 1:
        return 10 + int.from_bytes(view[8:10], "little")
    if major == 2:
        return 12 + int.from_bytes(view[8:12], "little")
    return 0


def ndarrays_to_parameters(arrays: Sequence[np.ndarray]) -> Parameters:
    """Flower's ``ndarrays_to_parameters``, faster (the same ``Parameters``)."""
    return Parameters(tensors=[ndarray_to_bytes(a) for a in arrays], tensor_type="numpy.ndarray")


def parameters_to_ndarrays(parameters: Parameters, copy: bool = True) -> list[np.ndarray]:
    """Flower's ``parameters_to_ndarrays``, faster (the same arrays, or the same error); with
    ``copy=False``, read-only views where :func:`bytes_to_ndarray` can give them."""
    return [bytes_to_ndarray(t, copy) for t in parameters.tensors]
