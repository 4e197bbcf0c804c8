"""Hypothesis-generated payloads for every decoder and for the server's reply path.

Decoders (:meth:`Compressor.decode`, :func:`~fedrobust.optim.unpack_signs`) either return a finite
float32 vector of length d or raise :class:`~fedrobust.compression.PayloadError`; nothing else.
A strategy's ``aggregate_fit`` never raises on what clients send and keeps the model finite.
Examples are derandomised (the same ones every run) so that CI is stable.
"""

import numpy as np
import pytest
import torch
from flwr.common import Code, FitRes, Parameters, Status, ndarrays_to_parameters
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fedrobust.compression import PayloadError, get_compressor, payload_from_ndarrays, payload_to_ndarrays
from fedrobust.config import RunConfig
from fedrobust.optim import unpack_signs
from fedrobust.strategies import STRATEGIES

FUZZ = settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))

COMPRESSORS = {
    "identity": {},
    "top-k": {"k": 3},
    "top-k ratio": {"ratio": 0.2},
    "rand-k": {"k": 3},
    "rand-k rescale": {"k": 2, "rescale": True},
    "qsgd": {"s": 4},
    "qsgd wide buckets": {"s": 300, "bucket_size": 3},
    "bernoulli-qsgd": {},
    "sign": {},
    "scaled-sign": {},
}
DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.int64, np.uint64, np.float16, np.float32, np.float64, np.bool_]


def compressor(label):
    return get_compressor(label.split(" ")[0], **COMPRESSORS[label])


def any_array(max_len=48):
    return st.sampled_from(DTYPES).flatmap(
        lambda dt: hnp.arrays(dt, st.integers(0, max_len) | st.tuples(st.integers(0, 4), st.integers(0, 4)))
    )


def check_decodes_or_payload_error(q, payload, d):
    try:
        y = q.decode(payload, d)
    except PayloadError:
        return
    assert y.dtype == torch.float32 and y.shape == (d,) and bool(torch.isfinite(y).all())


@pytest.mark.parametrize("label", sorted(COMPRESSORS))
@FUZZ
@given(data=st.data(), d=st.integers(3, 40))
def test_random_payloads_decode_or_raise_payload_error(label, data, d):
    q = compressor(label)
    keys = list(q.keys)
    if data.draw(st.booleans()):  # sometimes a wrong key set
        keys = data.draw(st.lists(st.sampled_from([*keys, "extra", "seed", "values"]), max_size=4, unique=True))
    payload = {k: data.draw(any_array()) for k in keys}
    if data.draw(st.integers(0, 9)) == 0:  # or something that is not an array at all
        payload[keys[0] if keys else "x"] = data.draw(st.sampled_from([None, 3, "abc", [1, 2], b"\x00"]))
    check_decodes_or_payload_error(q, payload, d)


@pytest.mark.parametrize("label", sorted(COMPRESSORS))
@FUZZ
@given(data=st.data(), d=st.integers(3, 40))
def test_mutated_valid_payloads_decode_or_raise_payload_error(label, data, d):
    """A real payload with one array truncated, extended, overwritten (bits, out-of-range indices,
    levels, NaN norms, other seeds) or cast to another dtype."""
    q = compressor(label)
    x = torch.from_numpy(data.draw(hnp.arrays(np.float32, d, elements=st.floats(-1e3, 1e3, width=32))))
    payload = dict(q.encode(x, seed=0) if q.randomized else q.encode(x))
    key = data.draw(st.sampled_from(list(payload)))
    arr = payload[key]
    how = data.draw(st.sampled_from(["truncate", "extend", "overwrite", "cast"]))
    if how == "truncate":
        payload[key] = arr[: data.draw(st.integers(0, max(0, len(arr) - 1)))]
    elif how == "extend":
        payload[key] = np.concatenate([arr, data.draw(hnp.arrays(arr.dtype, st.integers(1, 9)))])
    elif how == "overwrite":
        payload[key] = data.draw(hnp.arrays(arr.dtype, len(arr)))
    else:
        payload[key] = arr.astype(data.draw(st.sampled_from(DTYPES)))
    check_decodes_or_payload_error(q, payload, d)


@FUZZ
@given(data=st.data(), l=st.integers(1, 40))
def test_ternary_messages_decode_or_raise_payload_error(data, l):
    payload = {"negative": data.draw(any_array()), "zero": data.draw(any_array())}
    try:
        signs = unpack_signs(payload, l)
    except PayloadError:
        return
    assert signs.shape == (l,) and set(signs.tolist()) <= {-1, 0, 1}


@FUZZ
@given(arrays=st.lists(any_array(), max_size=5))
def test_array_lists_of_any_length_become_a_payload_or_a_payload_error(arrays):
    q = get_compressor("scaled-sign")
    try:
        payload = payload_from_ndarrays(q, arrays)
    except PayloadError:
        return
    check_decodes_or_payload_error(q, payload, 9)


# --------------------------------------------------------------------------------- the server
SHAPES = [(2, 3), (3,)]  # d = 9
SERVER_CASES = {
    "mean-sgd": {},
    "bgmd": {},
    "trimmed-mean": {},
    "norm-threshold": {"norm_option": 1},
    "qbgmd": {"compressor": "top-k", "compressor_params": "k=3"},
    "fl-bgmd": {"compressor": "qsgd"},
    "fed-cure": {"compressor": "bernoulli-qsgd"},
    "signsgd-mv": {},
    "c-rsa": {},
}


def valid_reply(strategy, rng):
    """A well-formed reply of the strategy's protocol (so that some fuzzed rounds also aggregate)."""
    x = torch.from_numpy(rng.standard_normal(9).astype(np.float32))
    if strategy.name == "c-rsa":
        from fedrobust.optim import pack_signs

        return payload_to_ndarrays(pack_signs(torch.sign(x[: strategy.l]).to(torch.int8)))
    if hasattr(strategy, "compressor"):
        q = strategy.compressor
        return payload_to_ndarrays(q.encode(x, seed=1) if q.randomized else q.encode(x))
    return [x[:6].numpy().reshape(2, 3), x[6:].numpy()]


metric_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**63), 2**63 - 1), st.text(max_size=5),
    st.booleans(), st.binary(max_size=4),
)
fuzzed_reply = st.one_of(
    st.tuples(st.lists(any_array(12), max_size=4), st.integers(-3, 100) | st.booleans(),
              st.dictionaries(st.sampled_from(["grad_norm", "partition_id", "loss"]), metric_values)),
    st.binary(max_size=64),  # raw bytes where the arrays should be
    st.just("valid"),
)


@pytest.mark.parametrize("name", sorted(SERVER_CASES))
@settings(max_examples=25, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(replies=st.lists(fuzzed_reply, min_size=1, max_size=5), seed=st.integers(0, 2**16))
def test_aggregate_fit_never_raises_and_keeps_the_model_finite(name, replies, seed):
    cfg = RunConfig(strategy=name, num_clients=5, clients_per_round=5, device="cpu", **SERVER_CASES[name])
    strategy = STRATEGIES[name](cfg, torch.zeros(9), SHAPES)
    rng = np.random.default_rng(seed)
    results = []
    for r in replies:
        if r == "valid":
            params, n, metrics = ndarrays_to_parameters(valid_reply(strategy, rng)), 8, {"grad_norm": 1.0}
        elif isinstance(r, bytes):
            params, n, metrics = Parameters([r], "numpy.ndarray"), 8, {}
        else:
            arrays, n, metrics = r
            params = ndarrays_to_parameters(arrays)
        results.append((None, FitRes(Status(Code.OK, ""), params, n, metrics)))
    for rnd in (1, 2):
        _, out = strategy.aggregate_fit(rnd, results, [])
        assert out["accepted_clients"] + out["rejected_clients"] == len(results)
        assert bool(torch.isfinite(strategy.x).all())
    assert out["accepted_clients"] >= replies.count("valid")


def test_payload_error_is_a_value_error():
    assert issubclass(PayloadError, ValueError)
