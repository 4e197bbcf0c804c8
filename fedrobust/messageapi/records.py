"""The Message-API wire format, and its conversion to and from the legacy ``FitIns`` / ``FitRes``.

The server's core (:class:`~fedrobust.strategies.VectorStrategy`) and the clients
(:data:`fedrobust.clients.CLIENTS`) speak Flower's legacy types; these functions carry them in
Message-API records with Flower's usual keys, losslessly:

===========  ==========================================================================
message      content
===========  ==========================================================================
``train``    ``"arrays"``: :class:`~flwr.app.ArrayRecord` (the arrays the strategy sends),
             ``"config"``: :class:`~flwr.app.ConfigRecord` (its config dict)
reply        ``"arrays"``: ArrayRecord (the client's message),
             ``"metrics"``: ConfigRecord (its metrics plus ``"num-examples"``)
``query``    ``"config"``: ConfigRecord (empty)
reply        ``"properties"``: ConfigRecord (``"partition-id"``, ``"num-examples"``)
===========  ==========================================================================

Reply metrics travel as a ``ConfigRecord``, not a ``MetricRecord``: a legacy metric may be any
Flower ``Scalar`` (a string or bytes too), and a reply must arrive as sent for the server to judge
it. The server accepts a ``MetricRecord`` under ``"metrics"`` as well.

Arrays keep the bytes the legacy API puts on the wire (``numpy.save``), so what a client sends
reaches the server's validator unchanged, through either API.

Examples
--------
>>> import numpy as np
>>> from flwr.common import Code, FitRes, Status, ndarrays_to_parameters
>>> res = FitRes(Status(Code.OK, ""), ndarrays_to_parameters([np.ones(2, np.float32)]), 7, {"norm": 1.5, "tag": "x"})
>>> back = content_to_fitres(fitres_to_content(res))
>>> back.num_examples, back.metrics, back.parameters.tensors == res.parameters.tensors
(7, {'norm': 1.5, 'tag': 'x'}, True)
"""

from __future__ import annotations

from collections.abc import Mapping

from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord, RecordDict
from flwr.common import (
    Code,
    FitIns,
    FitRes,
    Parameters,
    Scalar,
    Status,
)

from ..core.wire import bytes_to_ndarray, canonical_npy, ndarray_to_bytes

__all__ = [
    "ARRAYS_KEY",
    "CONFIG_KEY",
    "METRICS_KEY",
    "PROPERTIES_KEY",
    "NUM_EXAMPLES_KEY",
    "MalformedContent",
    "fitins_to_content",
    "content_to_fitins",
    "fitres_to_content",
    "content_to_fitres",
    "query_content",
    "properties_to_content",
    "content_to_properties",
]

ARRAYS_KEY = "arrays"
CONFIG_KEY = "config"
METRICS_KEY = "metrics"
PROPERTIES_KEY = "properties"
NUM_EXAMPLES_KEY = "num-examples"
_NDARRAY = "numpy.ndarray"


class MalformedContent(ValueError):
    """A message's content lacks a record the protocol needs (counted as a failed client)."""


def fitins_to_content(ins: FitIns, extra_config: Mapping[str, Scalar] | None = None) -> RecordDict:
    """The content of a ``train`` message: the instruction's arrays and config.

    ``extra_config`` entries are added to the config where the instruction does not set them.
    """
    arrays = _array_record(ins.parameters)
    return RecordDict({ARRAYS_KEY: arrays, CONFIG_KEY: ConfigRecord({**(extra_config or {}), **ins.config})})


def content_to_fitins(content: RecordDict) -> FitIns:
    """The legacy instruction a ``train`` message carries (client side).

    Raises
    ------
    MalformedContent
        If the content has no ``"arrays"`` ArrayRecord or no ``"config"`` ConfigRecord.
    """
    arrays = _record(content, ARRAYS_KEY, ArrayRecord)
    config = _record(content, CONFIG_KEY, ConfigRecord)
    return FitIns(_parameters(arrays), dict(config))


def fitres_to_content(res: FitRes) -> RecordDict:
    """The content of a ``train`` reply (client side).

    Raises
    ------
    RuntimeError
        If the client's status is not OK (the ClientApp then replies with an error, a failure).
    """
    if res.status.code != Code.OK:
        raise RuntimeError(f"the client returned status {res.status.code.name}: {res.status.message}")
    arrays = _array_record(res.parameters)
    metrics = ConfigRecord({**(res.metrics or {}), NUM_EXAMPLES_KEY: res.num_examples})
    return RecordDict({ARRAYS_KEY: arrays, METRICS_KEY: metrics})


def content_to_fitres(content: RecordDict) -> FitRes:
    """The legacy reply a ``train`` reply carries (server side), for the core's validator.

    Values are not judged here (the core validates arrays, ``num_examples`` and metrics and rejects
    bad replies with a reason); only a reply without the records is malformed.

    Raises
    ------
    MalformedContent
        If the content has no ``"arrays"`` ArrayRecord or no ``"metrics"`` record.
    """
    arrays = _record(content, ARRAYS_KEY, ArrayRecord)
    metrics = dict(_record(content, METRICS_KEY, (ConfigRecord, MetricRecord)))
    num_examples = metrics.pop(NUM_EXAMPLES_KEY, None)
    return FitRes(Status(Code.OK, ""), _parameters(arrays), num_examples, metrics)  # type: ignore[arg-type]


def query_content() -> RecordDict:
    """The content of the ``query`` message that asks a node for its properties."""
    return RecordDict({CONFIG_KEY: ConfigRecord()})


def properties_to_content(properties: Mapping[str, Scalar]) -> RecordDict:
    """The content of a ``query`` reply (client side)."""
    return RecordDict({PROPERTIES_KEY: ConfigRecord(dict(properties))})


def content_to_properties(content: RecordDict) -> dict[str, Scalar]:
    """The properties a ``query`` reply carries (server side).

    Raises
    ------
    MalformedContent
        If the content has no ``"properties"`` record.
    """
    return dict(_record(content, PROPERTIES_KEY, (ConfigRecord, MetricRecord)))


def _record(content: RecordDict, key: str, kind: type | tuple[type, ...]):
    record = content.get(key) if isinstance(content, RecordDict) else None
    if not isinstance(record, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        found = "nothing" if record is None else type(record).__name__
        raise MalformedContent(f"the message has no {names} {key!r} (found {found})")
    return record


def _array_record(parameters: Parameters) -> ArrayRecord:
    """``ArrayRecord(parameters_to_ndarrays(parameters))``: the same record (keys ``"0"``, ``"1"``, ...,
    the same arrays and bytes) or the same error.

    A tensor that already is the ``.npy`` bytes its ``Array`` would hold
    (:func:`~fedrobust.core.wire.canonical_npy`: what fedrobust's codec writes) becomes that
    ``Array`` as it is; any other one is decoded and encoded again (``np.save``), as before. A
    3.2 MB reply: about 1 ms less on each side.
    """
    record = ArrayRecord()
    for index, tensor in enumerate(parameters.tensors):
        fields = canonical_npy(tensor)
        if fields is None:
            record[str(index)] = Array.from_numpy_ndarray(bytes_to_ndarray(tensor))
        else:
            record[str(index)] = Array(dtype=str(fields[0]), shape=tuple(fields[1]), stype=_NDARRAY, data=tensor)
    return record


def _parameters(record: ArrayRecord) -> Parameters:
    """Legacy ``Parameters`` holding the record's arrays as ``numpy.save`` bytes, in record order.

    numpy arrays keep their bytes as they came (undecodable bytes are the core validator's to
    reject); arrays of another kind are converted to numpy first.
    """
    return Parameters([_npy_bytes(a) for a in record.values()], _NDARRAY)


def _npy_bytes(array: Array) -> bytes:
    return array.data if array.stype == _NDARRAY else ndarray_to_bytes(array.numpy())
