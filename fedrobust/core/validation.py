"""The one validator of untrusted client replies, shared by every strategy.

Everything a client sends is untrusted input. :class:`~fedrobust.strategies.VectorStrategy` runs
every reply through these checks before aggregation; a failing reply is dropped from the round
(counted in ``rejected_clients``, its reason logged and recorded), never raised:

- :func:`check_arrays`: the number of arrays, their shapes and their dtype (the model's arrays);
- :func:`check_values`: every entry finite and of magnitude at most :data:`MAGNITUDE_BOUND`;
- payload decoding (compressed protocols): the strategy's ``read_reply`` returns the decoder's reason.

Every check answers with the reason a reply is rejected, or None: there is one rejection channel.

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

import logging
import math
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["MAGNITUDE_BOUND", "RowStack", "check_arrays", "check_values", "num_examples_reason"]

_LOG = logging.getLogger("flwr")  # Flower's logger: rejections show in a run's log

MAGNITUDE_BOUND = 1e30
"""The largest |entry| an accepted client vector may hold (see the module docstring)."""


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
    >>> check_values(np.array([np.nan, 1.0, np.inf])), check_values(np.array([-1e31, 0.0]))
    ('2 non-finite value(s) (NaN or ±Inf)', '|value| up to 1e+31 exceeds the bound 1e+30')
    """
    if vec.size and vec.dtype.kind == "f":
        # One pass, no temporary: a finite sum of squares means every entry is finite and below
        # its square root; a NaN, an Inf or an overflow (entries past ~1e19 in float32) make it
        # non-finite, and the exact checks below then decide.
        flat = vec.reshape(-1)
        with np.errstate(over="ignore", invalid="ignore"):
            square = float(np.dot(flat, flat))
        if math.isfinite(square) and math.sqrt(square) <= bound:
            return None
    finite = np.isfinite(vec)
    if not finite.all():
        return f"{int(vec.size - np.count_nonzero(finite))} non-finite value(s) (NaN or ±Inf)"
    top = float(np.abs(vec).max()) if vec.size else 0.0
    if top > bound:
        return f"|value| up to {top:.3g} exceeds the bound {bound:.3g}"
    return None


def num_examples_reason(num_examples: object) -> str | None:
    """Why a reply's ``num_examples`` is not a count (an integer >= 0), or None.

    Examples
    --------
    >>> num_examples_reason(3), num_examples_reason(-1), num_examples_reason(True)
    (None, 'num_examples is negative: -1', 'num_examples is not an integer: True')
    """
    if isinstance(num_examples, bool) or not isinstance(num_examples, (int, np.integer)):
        return f"num_examples is not an integer: {num_examples!r}"
    if num_examples < 0:
        return f"num_examples is negative: {num_examples}"
    return None


class RowStack:
    """Accepted client vectors, stacked into one preallocated (n, d) buffer as they are checked.

    Every reply is written into the next free row by a ``fill`` function that returns why the
    reply is malformed (or None); the row's values are then checked (:func:`check_values`). A
    rejected reply is logged with its sender and recorded, and its row is reused by the next
    reply, so the server holds one (n, d) matrix however many replies fail. fedrobust's
    strategies and the plugin strategies stack their rounds with it.

    Parameters
    ----------
    n, d : int
        At most ``n`` rows of ``d`` entries.
    dtype : numpy dtype
        The buffer's dtype.
    buffer : numpy.ndarray, optional
        An (n, d) array of ``dtype`` to stack into instead of a new one (its contents are
        overwritten): a round's stack reusing the last round's memory.

    Attributes
    ----------
    accepted : list of int
        Positions (as passed to :meth:`add`) of the accepted replies, in row order.
    rejections : list of (object, str)
        ``(sender, reason)`` of every rejected reply.

    Examples
    --------
    >>> stack = RowStack(3, 2)
    >>> def fill(values):
    ...     def write(row):
    ...         row[:] = values
    ...     return write
    >>> [stack.add(i, f"client {i}", fill(v)) for i, v in enumerate([[1, 2], [np.nan, 0], [3, 4]])]
    [True, False, True]
    >>> stack.rows.tolist(), stack.accepted, stack.rejections
    ([[1.0, 2.0], [3.0, 4.0]], [0, 2], [('client 1', '1 non-finite value(s) (NaN or ±Inf)')])
    """

    def __init__(self, n: int, d: int, dtype: object = np.float32, buffer: np.ndarray | None = None) -> None:
        if buffer is not None and (buffer.shape != (n, d) or buffer.dtype != np.dtype(dtype)):
            raise ValueError(f"buffer must be a ({n}, {d}) {np.dtype(dtype)} array, got {buffer.shape} {buffer.dtype}")
        self.buffer = np.empty((n, d), dtype=dtype) if buffer is None else buffer
        self.accepted: list[int] = []
        self.rejections: list[tuple[object, str]] = []

    @property
    def rows(self) -> np.ndarray:
        """The accepted rows, a view of shape (len(accepted), d)."""
        return self.buffer[: len(self.accepted)]

    def add(
        self,
        position: int,
        sender: object,
        fill: Callable[[np.ndarray], str | None],
        server_round: int = 0,
        check: bool = True,
    ) -> bool:
        """Check one reply: ``fill(row)`` writes it into the next row (or returns why it cannot);
        True when accepted, else the rejection is logged (naming ``sender``) and recorded.
        ``check=False`` when ``fill`` checks the values itself (:func:`check_values`)."""
        row = self.buffer[len(self.accepted)]
        reason = fill(row)
        if reason is None and check:
            reason = check_values(row)
        if reason is not None:
            self.reject(sender, reason, server_round)
            return False
        self.accepted.append(position)
        return True

    def reject(self, sender: object, reason: str, server_round: int = 0) -> None:
        """Record (and log) a reply rejected before it reached a row."""
        self.rejections.append((sender, reason))
        _LOG.warning("round %s: %s rejected: %s", server_round, _label(sender), reason)


def _label(sender: object) -> str:
    return f"reply of partition {sender}" if isinstance(sender, (int, np.integer)) else str(sender)
