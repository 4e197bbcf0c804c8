"""Wire payloads: ordered ``dict[str, np.ndarray]``, their size, their list form and their checks.

A payload maps 1:1 to a Flower ``ArrayRecord`` (one ``Array`` per key) or, in a fixed key order, to
the list of ndarrays of the legacy ``NumPyClient`` path. Every array is 1-D; scalars travel as
1-element arrays. Payloads from the network are untrusted: the helpers here raise
:class:`PayloadError` for anything malformed instead of failing later with an ``IndexError``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .base import Compressor

__all__ = [
    "PayloadError",
    "payload_nbytes",
    "payload_to_ndarrays",
    "payload_from_ndarrays",
    "check_payload",
    "expect_length",
    "expect_finite",
]


class PayloadError(ValueError):
    """A compressed payload is malformed (missing keys, wrong dtypes or lengths, bad values).

    Examples
    --------
    >>> issubclass(PayloadError, ValueError)
    True
    """


def payload_nbytes(payload: Mapping[str, np.ndarray]) -> int:
    """Bytes on the wire: the sum of ``arr.nbytes`` over the payload's arrays.

    Examples
    --------
    >>> payload_nbytes({"values": np.zeros(3, np.float32), "seed": np.zeros(1, np.uint64)})
    20
    """
    if not isinstance(payload, Mapping):
        raise TypeError(f"payload must be a dict[str, np.ndarray], got {type(payload).__name__}")
    total = 0
    for key, arr in payload.items():
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"payload[{key!r}] must be a numpy.ndarray, got {type(arr).__name__}")
        total += int(arr.nbytes)
    return total


def payload_to_ndarrays(payload: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """The payload's arrays as a list, in the payload's (the compressor's fixed) key order.

    Examples
    --------
    >>> payload_to_ndarrays({"a": np.ones(1), "b": np.zeros(2)})
    [array([1.]), array([0., 0.])]
    """
    payload_nbytes(payload)  # type checks
    return list(payload.values())


def payload_from_ndarrays(compressor: Compressor, arrays: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Rebuild a payload from the list made by :func:`payload_to_ndarrays`.

    Parameters
    ----------
    compressor : Compressor
        The compressor that made the payload; its ``keys`` give the fixed key order.
    arrays : sequence of numpy.ndarray
        One array per key, in that order.

    Returns
    -------
    dict[str, numpy.ndarray]
        The payload (not yet validated: :meth:`Compressor.decode` checks the contents).

    Raises
    ------
    PayloadError
        If the number of arrays does not match the compressor's keys.

    Examples
    --------
    >>> from fedrobust.compression import get_compressor
    >>> q = get_compressor("scaled-sign")
    >>> sorted(payload_from_ndarrays(q, [np.zeros(1, np.uint8)] * 2 + [np.ones(1, np.float32)]))
    ['negative', 'scale', 'zero']
    """
    from .base import Compressor

    if not isinstance(compressor, Compressor):
        raise TypeError(f"compressor must be a Compressor instance, got {type(compressor).__name__}")
    if isinstance(arrays, (str, bytes, Mapping)) or not isinstance(arrays, Sequence):
        raise PayloadError(f"arrays must be a list of numpy arrays, got {type(arrays).__name__}")
    keys = compressor.keys
    if len(arrays) != len(keys):
        raise PayloadError(
            f"compressor {compressor.name!r} expects {len(keys)} arrays {list(keys)}, got {len(arrays)}"
        )
    return dict(zip(keys, arrays))


def check_payload(payload: Any, dtypes: Mapping[str, Any], name: str = "payload") -> dict[str, np.ndarray]:
    """Check keys, array types, dtypes and 1-D shapes of an untrusted payload.

    Parameters
    ----------
    payload : Any
        What arrived; must be a mapping with exactly the keys of ``dtypes``.
    dtypes : Mapping[str, dtype-like]
        Expected key -> numpy dtype (compared exactly, byte order included).
    name : str
        Used in error messages (e.g. the compressor's name).

    Returns
    -------
    dict[str, numpy.ndarray]
        The arrays, in ``dtypes``' key order.

    Examples
    --------
    >>> check_payload({"v": np.ones(2, np.float32)}, {"v": np.float32})
    {'v': array([1., 1.], dtype=float32)}
    >>> check_payload({"v": np.ones(2)}, {"v": np.float32})
    Traceback (most recent call last):
    ...
    fedrobust.compression.payload.PayloadError: payload['v'] must have dtype float32, got float64
    """
    if not isinstance(payload, Mapping):
        raise PayloadError(f"{name} must be a dict[str, np.ndarray], got {type(payload).__name__}")
    missing = [k for k in dtypes if k not in payload]
    if missing:
        raise PayloadError(f"{name} is missing key(s) {missing}; expected keys {list(dtypes)}")
    extra = [k for k in payload if k not in dtypes]
    if extra:
        raise PayloadError(f"{name} has unexpected key(s) {extra!r}; expected keys {list(dtypes)}")
    out: dict[str, np.ndarray] = {}
    for key, dtype in dtypes.items():
        arr = payload[key]
        if not isinstance(arr, np.ndarray):
            raise PayloadError(f"{name}[{key!r}] must be a numpy.ndarray, got {type(arr).__name__}")
        want = np.dtype(dtype)
        if arr.dtype != want:
            raise PayloadError(f"{name}[{key!r}] must have dtype {want}, got {arr.dtype}")
        if arr.ndim != 1:
            raise PayloadError(f"{name}[{key!r}] must be 1-D, got shape {arr.shape}")
        out[key] = arr
    return out


def expect_length(arr: np.ndarray, length: int, what: str) -> None:
    """Raise :class:`PayloadError` unless ``len(arr) == length``."""
    if arr.shape[0] != length:
        raise PayloadError(f"{what} must have length {length}, got {arr.shape[0]}")


def expect_finite(arr: np.ndarray, what: str, *, nonnegative: bool = False) -> None:
    """Raise :class:`PayloadError` if ``arr`` holds NaN/Inf (or negatives when ``nonnegative``)."""
    if not np.isfinite(arr).all():
        raise PayloadError(f"{what} must be finite, got NaN or Inf")
    if nonnegative and (arr < 0).any():
        raise PayloadError(f"{what} must be non-negative, got {arr.min()}")
