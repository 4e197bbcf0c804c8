"""A :class:`flwr.client.NumPyClient` as a Flower ``Client``, on fedrobust's faster wire codec.

Flower's ``NumPyClient.to_client()`` wraps a NumPy client in a ``Client`` that decodes the
server's ``Parameters`` and encodes the reply with ``np.load`` / ``np.save``. That codec is a
large share of a small model's round (each array's ``.npy`` header formatted or parsed, the data
copied two or three times). :func:`as_client` gives the same wrapper with
:mod:`fedrobust.core.wire` instead, which writes and reads the same bytes and arrays: what goes
over the wire, the statuses, the type checks on ``fit``/``evaluate``'s return values and which
methods fall back to ``Client``'s defaults (those the NumPy client does not override) are all
Flower's.

Examples
--------
>>> import numpy as np
>>> from flwr.client import NumPyClient
>>> from flwr.common import FitIns
>>> class Twice(NumPyClient):
...     def fit(self, parameters, config):
...         return [2 * p for p in parameters], 1, {}
>>> res = as_client(Twice()).fit(FitIns(ndarrays_to_parameters([np.ones(2, np.float32)]), {}))
>>> res.status.message, parameters_to_ndarrays(res.parameters)[0].tolist()
('Success', [2.0, 2.0])
>>> as_client(Twice()).evaluate(None).status.code.name  # not overridden: Client's default
'EVALUATE_NOT_IMPLEMENTED'
"""

from __future__ import annotations

import functools

from flwr.client import Client, NumPyClient
from flwr.common import (
    Code,
    EvaluateIns,
    EvaluateRes,
    FitIns,
    FitRes,
    GetParametersIns,
    GetParametersRes,
    GetPropertiesIns,
    GetPropertiesRes,
    Status,
)
from flwr.compat.client.numpy_client import (
    EXCEPTION_MESSAGE_WRONG_RETURN_TYPE_EVALUATE,
    EXCEPTION_MESSAGE_WRONG_RETURN_TYPE_FIT,
    has_evaluate,
    has_fit,
    has_get_parameters,
    has_get_properties,
)

from fedrobust.core.wire import ndarrays_to_parameters, parameters_to_ndarrays

__all__ = ["NumPyClientAdapter", "as_client"]

_SUCCESS = "Success"


class NumPyClientAdapter(Client):
    """``numpy_client`` as a Flower ``Client`` (what ``NumPyClient.to_client()`` gives, faster).

    Build it with :func:`as_client`: as under Flower's own wrapper, its class has only the methods
    the NumPy client overrides, so Flower's message handler answers the others with its
    ``*_NOT_IMPLEMENTED`` statuses, and a direct call gets ``Client``'s default.

    Parameters
    ----------
    numpy_client : flwr.client.NumPyClient
        The client that does the work.
    views : bool
        Hand ``fit`` and ``evaluate`` read-only views of the message's arrays instead of copies
        (for a client that only reads them, as fedrobust's own do: one copy of the model less per
        message). Writing to one raises numpy's "assignment destination is read-only".
    """

    def __init__(self, numpy_client: NumPyClient, views: bool = False) -> None:
        self.numpy_client = numpy_client
        self.views = bool(views)


def _get_properties(self: NumPyClientAdapter, ins: GetPropertiesIns) -> GetPropertiesRes:
    """The NumPy client's ``get_properties(config)``."""
    properties = self.numpy_client.get_properties(config=ins.config)
    return GetPropertiesRes(status=Status(Code.OK, _SUCCESS), properties=properties)


def _get_parameters(self: NumPyClientAdapter, ins: GetParametersIns) -> GetParametersRes:
    """The NumPy client's ``get_parameters(config)``, encoded."""
    arrays = self.numpy_client.get_parameters(config=ins.config)
    return GetParametersRes(status=Status(Code.OK, _SUCCESS), parameters=ndarrays_to_parameters(arrays))


def _fit(self: NumPyClientAdapter, ins: FitIns) -> FitRes:
    """The NumPy client's ``fit(parameters, config)`` on the decoded parameters, its reply encoded.

    Raises
    ------
    TypeError
        If ``fit`` does not return ``(list of arrays, int, dict)`` (Flower's own message).
    """
    results = self.numpy_client.fit(parameters_to_ndarrays(ins.parameters, copy=not self.views), ins.config)
    if not (
        len(results) == 3
        and isinstance(results[0], list)
        and isinstance(results[1], int)
        and isinstance(results[2], dict)
    ):
        raise TypeError(EXCEPTION_MESSAGE_WRONG_RETURN_TYPE_FIT)
    arrays, num_examples, metrics = results
    return FitRes(Status(Code.OK, _SUCCESS), ndarrays_to_parameters(arrays), num_examples, metrics)


def _evaluate(self: NumPyClientAdapter, ins: EvaluateIns) -> EvaluateRes:
    """The NumPy client's ``evaluate(parameters, config)`` on the decoded parameters.

    Raises
    ------
    TypeError
        If ``evaluate`` does not return ``(float, int, dict)`` (Flower's own message).
    """
    results = self.numpy_client.evaluate(parameters_to_ndarrays(ins.parameters, copy=not self.views), ins.config)
    if not (
        len(results) == 3
        and isinstance(results[0], float)
        and isinstance(results[1], int)
        and isinstance(results[2], dict)
    ):
        raise TypeError(EXCEPTION_MESSAGE_WRONG_RETURN_TYPE_EVALUATE)
    loss, num_examples, metrics = results
    return EvaluateRes(Status(Code.OK, _SUCCESS), loss=loss, num_examples=num_examples, metrics=metrics)


@functools.lru_cache(maxsize=None)
def _adapter_class(properties: bool, parameters: bool, fit: bool, evaluate: bool) -> type[NumPyClientAdapter]:
    """The adapter class with the methods a NumPy client overrides (16 classes at most)."""
    chosen = {"get_properties": (properties, _get_properties), "get_parameters": (parameters, _get_parameters),
              "fit": (fit, _fit), "evaluate": (evaluate, _evaluate)}
    return type("NumPyClientAdapter", (NumPyClientAdapter,), {k: f for k, (has, f) in chosen.items() if has})


def as_client(numpy_client: NumPyClient, *, views: bool = False) -> Client:
    """``numpy_client`` as a Flower ``Client`` (see :class:`NumPyClientAdapter`; ``views``: read-only
    views of the message's arrays for ``fit`` and ``evaluate``, for a client that only reads them).

    Examples
    --------
    >>> import numpy as np
    >>> class Reads(NumPyClient):
    ...     def fit(self, parameters, config):
    ...         return [parameters[0].copy()], 1, {"writeable": parameters[0].flags.writeable}
    >>> ins = FitIns(ndarrays_to_parameters([np.ones(2, np.float32)]), {})
    >>> as_client(Reads()).fit(ins).metrics, as_client(Reads(), views=True).fit(ins).metrics
    ({'writeable': True}, {'writeable': False})
    """
    flags = (has_get_properties(numpy_client), has_get_parameters(numpy_client), has_fit(numpy_client),
             has_evaluate(numpy_client))
    return _adapter_class(*flags)(numpy_client, views)
