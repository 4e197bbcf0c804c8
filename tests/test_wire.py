"""fedrobust.core.wire against Flower's own npy codec: the same bytes, the same arrays, the same errors.

Every array Flower's ``ndarray_to_bytes`` can write is written byte for byte alike; every byte
string, however hostile (truncated, wrong magic, crafted headers, negative or huge shapes,
pickles, ``.npz``), decodes to the same array as Flower's ``bytes_to_ndarray`` or raises the same
error type with the same message.
"""

import io
import re

import numpy as np
import pytest
from flwr.common import Parameters
from flwr.common import bytes_to_ndarray as flower_decode
from flwr.common import ndarray_to_bytes as flower_encode
from flwr.common import ndarrays_to_parameters as flower_to_parameters
from flwr.common import parameters_to_ndarrays as flower_from_parameters
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fedrobust.core import wire

FUZZ = settings(max_examples=150, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))

DTYPES = st.sampled_from(
    ["<f4", "<f8", ">f4", "<f2", "<i8", "<i4", ">i2", "u1", "i1", "<u8", "?", "<c8", ">c16", "<U3", "S2", "<M8[s]"]
)


def outcome(fn, data):
    """(array, None) or (None, (error type, message)) of ``fn(data)``; object addresses in the
    message (numpy quotes the ``ast`` node it refused) are left out."""
    try:
        return fn(data), None
    except Exception as err:  # noqa: BLE001 - the error itself is what is compared
        return None, (type(err), re.sub(r" at 0x[0-9a-f]+", "", str(err)))


def assert_same_decode(data):
    theirs, their_error = outcome(flower_decode, data)
    view, view_error = outcome(lambda b: wire.bytes_to_ndarray(b, copy=False), data)
    assert view_error == their_error
    if isinstance(view, np.ndarray):  # a read-only view of the bytes (or, off the fast path, Flower's array)
        np.testing.assert_array_equal(view, theirs)
        assert view.dtype == theirs.dtype and view.shape == theirs.shape
    ours, our_error = outcome(wire.bytes_to_ndarray, data)
    assert our_error == their_error
    assert type(ours) is type(theirs)
    if isinstance(theirs, np.lib.npyio.NpzFile):  # np.load reads a .npz; the reply checks reject it
        assert sorted(ours.files) == sorted(theirs.files)
    elif theirs is not None:
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        assert ours.flags.writeable and ours.flags.c_contiguous == theirs.flags.c_contiguous
        np.testing.assert_array_equal(ours, theirs)
        assert ours.tobytes() == theirs.tobytes()


@FUZZ
@given(hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)))
def test_encode_and_decode_are_flowers(array):
    assert wire.ndarray_to_bytes(array) == flower_encode(array)
    assert_same_decode(flower_encode(array))


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12.0).reshape(3, 4).T,  # Fortran-ordered view
        np.arange(12.0)[::3],  # strided
        np.asfortranarray(np.ones((2, 3), np.float32)),
        np.zeros((2, 0, 3), np.float32),
        np.float32(3.5) * np.ones(()),
        np.zeros(3, dtype=[("a", "<f4"), ("b", "<i8", (2,))]),
        np.zeros(2, dtype=np.dtype(("<f4", (3,)))),  # a subarray dtype turns into shape (2, 3)
        np.ma.masked_array([1.0, 2.0], mask=[0, 1]),  # an ndarray subclass
    ],
)
def test_odd_arrays_match_flower(array):
    assert wire.ndarray_to_bytes(array) == flower_encode(array)
    assert_same_decode(flower_encode(array))


def test_object_arrays_raise_as_flower_does():
    array = np.array([{"a": 1}, None], dtype=object)
    with pytest.raises(ValueError) as theirs:
        flower_encode(array)
    with pytest.raises(ValueError) as ours:
        wire.ndarray_to_bytes(array)
    assert str(ours.value) == str(theirs.value)


def npy(header: str, data: bytes = b"", version: int = 1) -> bytes:
    """A ``.npy`` file with a hand-written header dict (padded as numpy pads it)."""
    text = header.encode("latin1")
    prefix = 10 if version == 1 else 12
    text += b" " * ((64 - (prefix + len(text) + 1) % 64) % 64) + b"\n"
    length = len(text).to_bytes(2 if version == 1 else 4, "little")
    return b"\x93NUMPY" + bytes([version, 0]) + length + text + data


HOSTILE = {
    "empty": b"",
    "not npy": b"hello, server" * 10,
    "magic only": b"\x93NUMPY",
    "version 3": b"\x93NUMPY\x03\x00" + b"\x00" * 64,
    "header length past the end": b"\x93NUMPY\x01\x00\xff\xff{'descr': '<f4'}",
    "truncated data": flower_encode(np.ones(100, np.float32))[:-4],
    "trailing bytes": flower_encode(np.ones(3, np.float32)) + b"\x00" * 7,
    "negative shape": npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", b"\x00" * 8),
    "huge shape": npy("{'descr': '<f4', 'fortran_order': False, 'shape': (10**12, 10**12), }", b"\x00" * 8),
    "float shape": npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,), }", b"\x00" * 16),
    "unknown descr": npy("{'descr': 'zz', 'fortran_order': False, 'shape': (2,), }", b"\x00" * 16),
    "code in header": npy("{'descr': __import__('os').getcwd(), 'fortran_order': False, 'shape': (2,), }"),
    "missing key": npy("{'descr': '<f4', 'shape': (2,), }", b"\x00" * 8),
    "extra key": npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1, }", b"\x00" * 8),
    "not a dict": npy("[1, 2, 3]", b"\x00" * 8),
    "fortran order": npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", bytes(range(16))),
    "object dtype": npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", b"\x80\x04N."),
    "version 2 header": npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", bytes(range(16)), version=2),
    "header over the limit": npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }" + " " * 20_000, b"\x00" * 8),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_bytes_decode_as_flower_decodes_them(name):
    assert_same_decode(HOSTILE[name])


def test_npz_bytes_decode_as_flower_decodes_them():
    buffer = io.BytesIO()
    np.savez(buffer, a=np.ones(2))
    assert_same_decode(buffer.getvalue())


@FUZZ
@given(
    array=hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)),
    cut=st.integers(0, 200),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
)
def test_damaged_payloads_decode_as_flower_decodes_them(array, cut, flips):
    data = bytearray(flower_encode(array))
    for position, value in flips:
        if data:
            data[position % len(data)] = value
    assert_same_decode(bytes(data[: max(len(data) - cut, 0)] if cut % 3 == 0 else data))


def test_parameters_round_trip_as_flower():
    arrays = [np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32), np.arange(3)]
    assert wire.ndarrays_to_parameters(arrays) == flower_to_parameters(arrays)
    for ours, theirs in zip(wire.parameters_to_ndarrays(flower_to_parameters(arrays)), flower_from_parameters(
            flower_to_parameters(arrays))):
        assert ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)


def test_decoded_arrays_own_their_memory():
    data = flower_encode(np.ones(4, np.float32))
    first = wire.bytes_to_ndarray(data)
    first[:] = 7.0
    assert wire.bytes_to_ndarray(data).tolist() == [1.0] * 4


def test_views_never_write_the_message():
    data = bytearray(flower_encode(np.ones(4, np.float32)))
    view = wire.bytes_to_ndarray(data, copy=False)
    assert not view.flags.writeable and np.shares_memory(view, np.frombuffer(data, np.uint8))
    with pytest.raises(ValueError, match="read-only"):
        view[0] = 2.0
    assert [a.flags.writeable for a in wire.parameters_to_ndarrays(flower_to_parameters([np.ones(2)]), copy=False)] == [False]


def test_header_caches_stay_bounded():
    """Replies with ever new shapes (an attacker's) do not grow the process's memory."""
    for n in range(3 * wire._CACHE):
        data = wire.ndarray_to_bytes(np.zeros(n + 1, np.float32))
        assert wire.bytes_to_ndarray(data).shape == (n + 1,)
    assert wire._header.cache_info().currsize <= wire._CACHE
    assert wire._parsed.cache_info().currsize <= wire._CACHE


def test_parameters_with_bad_tensor_raise_flowers_error():
    parameters = Parameters(tensors=[flower_encode(np.ones(2)), b"junk"], tensor_type="numpy.ndarray")
    _, ours = outcome(wire.parameters_to_ndarrays, parameters)
    _, theirs = outcome(flower_from_parameters, parameters)
    assert ours == theirs and ours is not None
