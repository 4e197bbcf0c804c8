"""The one validator of untrusted client replies, shared by every strategy.

Everything a client sends is untrusted input. :class:`~fedrobust.strategies.VectorStrategy` runs
every reply through these checks before aggregation; a failing reply is dropped from the round
(counted in ``rejected_clients``, its reason logged and recorded), never raised:

- :func:`check_arrays`: the number of arrays, their shapes and their dtype (the model's arrays);
- :func:`check_values`: every entry finite and of magnitude at most :data:`MAGNITUDE_BOUND`;
- payload decoding (compressed protocols) raises :class:`MalformedReply` with the decoder's reason.

:data:`MAGNITUDE_BOUND` is 1e30: far above anything an attack that robust aggregation must face
sends (bit-flip's −100·g, large-number's 1e4), below float32's maximum (3.4e38); entries of
1e38 ("absurd magnitudes") are rejected. The aggregators do not rely on it: each stays correct
with a minority of rows holding any finite float32 values (see ``fedrobust.aggregators._gram``).

Examples
--------
>>> import numpy as np
>>> check_arrays([np.zeros((2, 3), np.float32)], [(2, 3)]) is None
True
>>> check_arrays([np.zeros((2, 3), np.float64)], [(2, 3)])
'array 0 has dtype float64, expected float32'
>>> check_values(np.array([1.0, np.nan], np.float32))
'1 non-finite value(s) (NaN or ±Inf)'
>>> check_values(np.array([1e4, -1e38], np.float32))
'|value| up to 1e+38 exceeds the bound 1e+30'
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["MAGNITUDE_BOUND", "MalformedReply", "check_arrays", "check_values"]

MAGNITUDE_BOUND = 1e30
"""The largest |entry| an accepted client vector may hold (see the module docstring)."""


class MalformedReply(ValueError):
    """A client reply that fails validation; its message is the reason (logged and recorded)."""


def check_arrays(
    arrays: Sequence[object], shapes: Sequence[tuple[int, ...]], dtype: str | Sequence[object] = "float32"
) -> str | None:
    """Why ``arrays`` are not the model's arrays (count, ndarray type, shapes, ``dtype``), or None.

    ``dtype`` is one dtype for every array, or a sequence of one per array.

    Examples
    --------
    >>> import numpy as np
    >>> check_arrays([np.zeros(3, np.float32)], [(3,), (2,)])
    'expected 2 arrays, got 1'
    >>> check_arrays([np.zeros((1, 3), np.float32)], [(3,)])
    'array 0 has shape (1, 3), expected (3,)'
    >>> check_arrays([np.zeros(2, np.float32), np.zeros(1, np.float64)], [(2,), (1,)], ["float32", "int64"])
    'array 1 has dtype float64, expected int64'
    """
    if len(arrays) != len(shapes):
        return f"expected {len(shapes)} arrays, got {len(arrays)}"
    dtypes = [dtype] * len(shapes) if isinstance(dtype, (str, np.dtype)) else list(dtype)
    for i, (a, shape, want) in enumerate(zip(arrays, shapes, dtypes)):
        if not isinstance(a, np.ndarray):
            return f"array {i} is a {type(a).__name__}, not a numpy array"
        if a.dtype != np.dtype(want):
            return f"array {i} has dtype {a.dtype}, expected {np.dtype(want)}"
        if a.shape != tuple(shape):
            return f"array {i} has shape {a.shape}, expected {tuple(shape)}"
    return None


def check_values(vec: np.ndarray, bound: float = MAGNITUDE_BOUND) -> str | None:
    """Why the flat client vector ``vec`` cannot be aggregated (non-finite or |entry| > ``bound``), or None.

    Examples
    --------
    >>> import numpy as np
    >>> check_values(np.array([-100.0, 1e4], np.float32)) is None
    True
    """
    finite = np.isfinite(vec)
    if not finite.all():
        return f"{int(vec.size - np.count_nonzero(finite))} non-finite value(s) (NaN or ±Inf)"
    top = float(np.abs(vec).max()) if vec.size else 0.0
    if top > bound:
        return f"|value| up to {top:.3g} exceeds the bound {bound:.3g}"
    return None
