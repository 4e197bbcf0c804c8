"""Tests of fedrobust.compression: exact Q(x), δ bounds, unbiasedness, wire sizes, untrusted payloads."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fedrobust.compression import (
    COMPRESSORS,
    Compressor,
    PayloadError,
    get_compressor,
    payload_from_ndarrays,
    payload_nbytes,
    payload_to_ndarrays,
    register_compressor,
)

# (registry name, parameters): every built-in compressor, with the parameter variants that change
# the wire format or the maths.
CONFIGS = [
    ("identity", {}),
    ("top-k", {"k": 3}),
    ("top-k", {"ratio": 0.3}),
    ("rand-k", {"k": 3}),
    ("rand-k", {"ratio": 0.3, "rescale": True}),
    ("qsgd", {"s": 4}),
    ("qsgd", {"s": 200}),
    ("qsgd", {"s": 2, "bucket_size": 4}),
    ("scaled-sign", {}),
    ("sign", {}),
    ("bernoulli-qsgd", {}),
]
IDS = [f"{n}{p or ''}" for n, p in CONFIGS]
RANDOM = {"rand-k", "qsgd", "bernoulli-qsgd"}


def make(name, params):
    return get_compressor(name, **params)


def sample_x(d: int, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(d, generator=g, dtype=torch.float64) * torch.rand(d, generator=g, dtype=torch.float64) * 3).to(dtype)


# ----------------------------------------------------------------------------- registry


def test_registry_holds_the_builtin_names():
    assert set(COMPRESSORS) >= {"identity", "top-k", "rand-k", "qsgd", "scaled-sign", "sign", "bernoulli-qsgd"}
    for name, params in CONFIGS:
        q = make(name, params)
        assert isinstance(q, Compressor) and q.name == name and type(q) is COMPRESSORS[name]


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError, match="unknown compressor 'topk'.*top-k"):
        get_compressor("topk")


def test_get_compressor_passes_instances_through():
    q = get_compressor("top-k", k=2)
    assert get_compressor(q) is q
    with pytest.raises(ValueError):
        get_compressor(q, k=3)


def test_user_defined_compressor_plugs_in():
    @register_compressor("test-half-precision")
    class HalfPrecision(Compressor):
        dtypes = {"values": np.dtype(np.float16)}
        unbiased = False

        def _encode(self, x, *, seed, generator):
            return {"values": x.to("cpu", torch.float16).numpy()}

        def _decode(self, fields, d, device):
            if fields["values"].shape[0] != d:
                raise PayloadError("values has the wrong length")
            return torch.from_numpy(fields["values"].astype(np.float32)).to(device)

        def _delta(self, d):
            return 1.0 - 2.0**-10

    try:
        q = get_compressor("test-half-precision")
        assert q.name == "test-half-precision" and "test-half-precision" in COMPRESSORS
        x = torch.tensor([1.0, 1.0 + 2.0**-12, -3.0])
        p = q.encode(x)
        assert payload_nbytes(p) == 6
        assert torch.equal(q.decode(payload_from_ndarrays(q, payload_to_ndarrays(p)), 3), x.half().float())
        assert torch.equal(q.compress(x), torch.tensor([1.0, 1.0, -3.0]))
        # the base class still checks untrusted payloads for the user
        with pytest.raises(PayloadError, match="dtype float16"):
            q.decode({"values": np.ones(3, np.float32)}, 3)
        with pytest.raises(PayloadError, match="non-finite"):
            q.decode({"values": np.array([np.inf, 0, 0], np.float16)}, 3)
        # duplicate names are refused unless overwrite=True
        with pytest.raises(ValueError, match="already registered"):
            register_compressor("test-half-precision", type("Other", (HalfPrecision,), {}))
        other = register_compressor("test-half-precision", type("Other", (HalfPrecision,), {}), overwrite=True)
        assert COMPRESSORS["test-half-precision"] is other
    finally:
        COMPRESSORS.pop("test-half-precision", None)
    with pytest.raises(TypeError, match="Compressor subclasses"):
        register_compressor("not-a-compressor", dict)
    assert "not-a-compressor" not in COMPRESSORS


# ----------------------------------------------------------------------------- exact Q(x)


@pytest.mark.parametrize(("name", "params"), CONFIGS, ids=IDS)
@pytest.mark.parametrize("d", [1, 7, 13, 64, 301])
def test_compress_is_decode_of_encode_and_reproducible(name, params, d):
    q = make(name, params)
    x = sample_x(d, seed=d)
    if params.get("k", 0) > d:
        with pytest.raises(ValueError, match="k must be <= d"):
            q.encode(x, seed=3)
        return
    p = q.encode(x, seed=3)
    assert list(p) == list(q.keys) and all(isinstance(a, np.ndarray) and a.ndim == 1 for a in p.values())
    y = q.decode(p, d=d, device=x.device)
    assert y.dtype == torch.float32 and y.shape == (d,) and bool(torch.isfinite(y).all())
    assert torch.equal(q.compress(x, seed=3), y)
    p2 = q.encode(x, seed=3)
    assert all(np.array_equal(p[k], p2[k]) for k in p)
    # the list form (legacy NumPyClient path) and a Flower ArrayRecord carry it unchanged
    assert torch.equal(q.decode(payload_from_ndarrays(q, payload_to_ndarrays(p)), d), y)
    from flwr.app import Array, ArrayRecord

    record = ArrayRecord({k: Array(v) for k, v in p.items()})
    assert torch.equal(q.decode({k: a.numpy() for k, a in record.items()}, d), y)


def test_identity_reference():
    x = sample_x(50, dtype=torch.float64)
    assert torch.equal(get_compressor("identity").compress(x), x.float())


def test_top_k_reference():
    x = sample_x(101)
    k = 10
    ref = torch.zeros(101)
    keep = torch.argsort(x.abs())[-k:]
    ref[keep] = x[keep]
    assert torch.equal(get_compressor("top-k", k=k).compress(x), ref)
    assert torch.equal(get_compressor("top-k", ratio=0.1).compress(x), ref)  # round(0.1 * 101) = 10


@pytest.mark.parametrize("rescale", [False, True])
def test_rand_k_reference(rescale):
    d, k, seed = 97, 9, 2**64 - 1
    x = sample_x(d)
    idx = torch.randperm(d, generator=torch.Generator().manual_seed(seed))[:k]
    ref = torch.zeros(d)
    ref[idx] = x[idx] * (d / k) if rescale else x[idx]
    q = get_compressor("rand-k", k=k, rescale=rescale)
    assert torch.equal(q.compress(x, seed=seed), ref)
    assert torch.equal(q.indices(d, seed), idx.sort().values)


def test_rand_k_indices_are_a_fresh_copy_of_the_cached_set():
    q = get_compressor("rand-k", k=5)
    first = q.indices(50, 7)
    first.fill_(0)  # a caller scribbling on its copy must not change the next draw
    expected = torch.randperm(50, generator=torch.Generator().manual_seed(7))[:5].sort().values
    assert torch.equal(q.indices(50, 7), expected)
    assert not torch.equal(q.indices(50, 8), expected)


@pytest.mark.parametrize(("s", "bucket"), [(1, None), (4, None), (3, 5), (300, 8)])
def test_qsgd_reference(s, bucket):
    d, seed = 23, 11
    x = sample_x(d)
    b = bucket or d
    u = torch.rand(d, generator=torch.Generator().manual_seed(seed))
    expected = torch.empty(d)
    for start in range(0, d, b):  # loop over buckets in the reference only
        xb = x[start : start + b]
        n = xb.norm().float()
        r = xb.abs() / n * s
        level = torch.clamp(torch.floor(r) + (u[start : start + b] < r - torch.floor(r)).float(), max=s)
        expected[start : start + b] = n * (torch.sign(xb) * level / s)
    assert torch.equal(get_compressor("qsgd", s=s, bucket_size=bucket).compress(x, seed=seed), expected)


def test_bernoulli_qsgd_reference():
    d, seed = 37, 4
    x = sample_x(d)
    u = torch.rand(d, generator=torch.Generator().manual_seed(seed))
    n = x.norm().float()
    expected = n * torch.sign(x) * (u < x.abs() / n).float()
    y = get_compressor("bernoulli-qsgd").compress(x, seed=seed)
    assert torch.equal(y, expected)
    assert torch.equal(y, get_compressor("qsgd", s=1).compress(x, seed=seed))
    assert set(y.abs().unique().tolist()) <= {0.0, n.item()}


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float32, st.integers(1, 40), elements=st.floats(-(2.0**100), 2.0**100, width=32)))
def test_sign_and_scaled_sign_reference(arr):
    x = torch.from_numpy(arr)
    d = x.numel()
    assert torch.equal(get_compressor("sign").compress(x), torch.sign(x))
    assert torch.equal(get_compressor("scaled-sign").compress(x), (x.abs().sum() / d) * torch.sign(x))


def test_generator_and_default_rng_are_reproducible():
    x = sample_x(40)
    for name, params in CONFIGS:
        q = make(name, params)
        a = q.compress(x, generator=torch.Generator().manual_seed(9))
        b = q.compress(x, generator=torch.Generator().manual_seed(9))
        torch.manual_seed(1)
        c = q.compress(x)
        torch.manual_seed(1)
        assert torch.equal(a, b) and torch.equal(c, q.compress(x))
    qs = get_compressor("qsgd", s=2)  # a CPU generator seeded with s is the same stream as seed=s
    assert torch.equal(qs.compress(x, seed=5), qs.compress(x, generator=torch.Generator().manual_seed(5)))


# ----------------------------------------------------------------------------- δ and bias


def _deterministic_vectors():
    g = torch.Generator().manual_seed(0)
    yield torch.randn(200, generator=g)
    yield torch.distributions.Cauchy(0.0, 1.0).sample((200,))  # heavy tails
    yield torch.cat([torch.zeros(150), torch.randn(50, generator=g)])
    yield torch.full((200,), 0.3)
    yield torch.eye(200)[7] * -5.0


@pytest.mark.parametrize(("name", "params"), [c for c in CONFIGS if c[0] not in RANDOM], ids=lambda c: str(c))
def test_delta_bound_deterministic(name, params):
    q = make(name, params)
    for x in _deterministic_vectors():
        err = (q.compress(x).double() - x.double()).pow(2).sum()
        assert err <= (1 - q.delta(x.numel())) * x.double().pow(2).sum() * (1 + 1e-6) + 1e-12


def test_delta_values():
    d = 400
    assert get_compressor("identity").delta(d) == 1.0
    assert get_compressor("top-k", k=20).delta(d) == 20 / d
    assert get_compressor("top-k", ratio=0.05).delta(d) == 20 / d
    assert get_compressor("rand-k", k=20).delta(d) == 20 / d
    assert get_compressor("rand-k", k=20, rescale=True).delta(d) == 2 - d / 20
    assert get_compressor("qsgd", s=4).delta(d) == 1 - min(d / 16, math.sqrt(d) / 4)
    assert get_compressor("qsgd", s=4, bucket_size=16).delta(d) == 1 - min(16 / 16, 4 / 4)
    assert get_compressor("scaled-sign").delta(d) == 1 / d
    assert get_compressor("bernoulli-qsgd").delta(d) == 1 - math.sqrt(d)
    assert get_compressor("sign").delta(d) == -math.inf
    with pytest.raises(ValueError, match=r"d must lie in \[1, inf\]"):
        get_compressor("sign").delta(0)


def test_sign_has_no_finite_delta():
    x = torch.full((10,), 1e-3)
    q = get_compressor("sign")
    ratio = (q.compress(x) - x).pow(2).sum() / x.pow(2).sum()
    assert ratio > 1e5  # ‖sign(x) − x‖² / ‖x‖² grows without bound as x → 0


def _monte_carlo(q, x, n):
    return torch.stack([q.compress(x, seed=i) for i in range(n)]).double()


@pytest.mark.parametrize(("name", "params"), [c for c in CONFIGS if c[0] in RANDOM], ids=lambda c: str(c))
def test_delta_bound_in_expectation(name, params):
    q = make(name, params)
    x = sample_x(10, seed=5).double()
    samples = _monte_carlo(q, x, 3000)
    mse = (samples - x).pow(2).sum(dim=1).mean()
    assert mse <= (1 - q.delta(10)) * x.pow(2).sum() * 1.05


@pytest.mark.parametrize(("rescale", "factor"), [(False, 1 - 3 / 10), (True, 10 / 3 - 1)])
def test_rand_k_error_is_exactly_as_documented(rescale, factor):
    x = sample_x(10, seed=2).double()
    samples = _monte_carlo(get_compressor("rand-k", k=3, rescale=rescale), x, 4000)
    mse = (samples - x).pow(2).sum(dim=1).mean() / x.pow(2).sum()
    assert mse == pytest.approx(factor, rel=0.06)


@pytest.mark.parametrize(("name", "params"), CONFIGS, ids=IDS)
def test_unbiasedness_claims(name, params):
    q = make(name, params)
    x = sample_x(10, seed=6).double()
    n = 3000
    samples = _monte_carlo(q, x, n)
    mean, se = samples.mean(0), samples.std(0) / math.sqrt(n)
    unbiased_looking = bool(((mean - x).abs() <= 5 * se + 1e-5 * x.abs().max()).all())
    assert q.unbiased == unbiased_looking


# ----------------------------------------------------------------------------- wire sizes


@pytest.mark.parametrize("d", [1, 7, 8, 9, 1001])
def test_payload_bytes_are_as_promised(d):
    x = sample_x(d, seed=d)
    x[x == 0] = 1.0  # no exact zeros here (the zero plane is tested below)
    b8 = math.ceil(d / 8)
    k = max(1, round(0.1 * d))
    assert payload_nbytes(get_compressor("identity").encode(x)) == 4 * d
    assert payload_nbytes(get_compressor("sign").encode(x)) == b8
    assert payload_nbytes(get_compressor("scaled-sign").encode(x)) == b8 + 4
    assert payload_nbytes(get_compressor("top-k", ratio=0.1).encode(x)) == 8 * k
    assert payload_nbytes(get_compressor("rand-k", ratio=0.1).encode(x, seed=1)) == 4 * k + 8
    assert payload_nbytes(get_compressor("qsgd", s=127).encode(x, seed=1)) == d + 4
    assert payload_nbytes(get_compressor("qsgd", s=128).encode(x, seed=1)) == 2 * d + 4
    assert payload_nbytes(get_compressor("qsgd", s=8, bucket_size=4).encode(x, seed=1)) == d + 4 * math.ceil(d / 4)
    p = get_compressor("bernoulli-qsgd").encode(x, seed=1)
    nnz = int(np.unpackbits(p["nonzero"]).sum())
    assert payload_nbytes(p) == b8 + math.ceil(nnz / 8) + 4


def test_zero_entries_cost_one_extra_bit_plane():
    x = torch.tensor([1.0, 0.0, -2.0, 3.0, 0.0, -1.0, 5.0, 2.0, 1.0])
    p = get_compressor("sign").encode(x)
    assert payload_nbytes(p) == 2 * 2
    assert torch.equal(get_compressor("sign").decode(p, 9), torch.sign(x))


def test_bernoulli_qsgd_is_much_smaller_than_qsgd():
    x = sample_x(10_000)
    pb = get_compressor("bernoulli-qsgd").encode(x, seed=0)
    assert payload_nbytes(pb) <= 10_000 / 8 + math.sqrt(10_000) / 8 + 8
    assert payload_nbytes(pb) < payload_nbytes(get_compressor("qsgd", s=1).encode(x, seed=0)) / 6


# ----------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize(("name", "params"), CONFIGS, ids=IDS)
@pytest.mark.parametrize("d", [1, 5, 9])
def test_all_zero_input(name, params, d):
    q = make(name, params)
    if params.get("k", 0) > d:
        return
    assert torch.equal(q.compress(torch.zeros(d), seed=0), torch.zeros(d))


@pytest.mark.parametrize(("name", "params"), CONFIGS, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_input_dtypes(name, params, dtype):
    x = sample_x(12, seed=1, dtype=dtype)
    y = make(name, params).compress(x, seed=0)
    assert y.dtype == torch.float32 and y.shape == (12,)


def test_single_entry_vectors_are_exact_for_contractions():
    x = torch.tensor([-2.5])
    for name in ["identity", "top-k", "rand-k", "scaled-sign", "qsgd", "bernoulli-qsgd"]:
        params = {"k": 1} if name in ("top-k", "rand-k") else {}
        assert torch.equal(get_compressor(name, **params).compress(x, seed=0), x), name


def test_large_vector_is_fast_enough():
    x = sample_x(500_000)
    for name, params in CONFIGS:  # a Python loop over d would take far longer than this whole test
        make(name, params).compress(x, seed=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize(("name", "params"), CONFIGS, ids=IDS)
def test_cuda_matches_cpu(name, params):
    q = make(name, params)
    x = sample_x(1000)
    y = q.compress(x.cuda(), seed=4)
    assert y.device.type == "cuda"
    torch.testing.assert_close(y.cpu(), q.compress(x, seed=4), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    ("name", "params", "error"),
    [
        ("top-k", {}, ValueError),
        ("top-k", {"k": 2, "ratio": 0.1}, ValueError),
        ("top-k", {"k": 0}, ValueError),
        ("rand-k", {"k": -3}, ValueError),
        ("top-k", {"k": 2.0}, TypeError),
        ("top-k", {"k": True}, TypeError),
        ("rand-k", {"ratio": 0.0}, ValueError),
        ("rand-k", {"ratio": 1.5}, ValueError),
        ("rand-k", {"k": 2, "rescale": "yes"}, TypeError),
        ("qsgd", {"s": 0}, ValueError),
        ("qsgd", {"s": 40_000}, ValueError),
        ("qsgd", {"s": 2.5}, TypeError),
        ("qsgd", {"s": 4, "bucket_size": 0}, ValueError),
        ("sign", {"k": 3}, ValueError),  # an unknown parameter: "takes no parameter"
    ],
)
def test_bad_parameters(name, params, error):
    with pytest.raises(error):
        get_compressor(name, **params)


@pytest.mark.parametrize(
    ("x", "kwargs", "error", "match"),
    [
        (torch.ones(2, 3), {}, ValueError, "1-D"),
        (torch.ones(3, dtype=torch.int64), {}, TypeError, "floating"),
        (torch.ones(0), {}, ValueError, "at least one"),
        (torch.tensor([1.0, float("nan")]), {}, ValueError, "finite"),
        ([1.0, 2.0], {}, TypeError, "torch.Tensor"),
        (torch.ones(3), {"seed": -1}, ValueError, "seed"),
        (torch.ones(3), {"seed": 2**64}, ValueError, "seed"),
        (torch.ones(3), {"seed": 1.5}, TypeError, "seed"),
        (torch.ones(3), {"seed": 1, "generator": torch.Generator()}, ValueError, "not both"),
        (torch.ones(3), {"generator": 5}, TypeError, "generator"),
    ],
)
def test_bad_encode_arguments(x, kwargs, error, match):
    with pytest.raises(error, match=match):
        get_compressor("qsgd").encode(x, **kwargs)


def test_k_larger_than_d_and_overflow():
    with pytest.raises(ValueError, match="k must be <= d"):
        get_compressor("rand-k", k=5).encode(torch.ones(4), seed=0)
    with pytest.raises(ValueError, match="overflows float32"):
        get_compressor("qsgd").encode(torch.full((4,), 3e38), seed=0)
    with pytest.raises(ValueError, match=r"d must lie in \[1, inf\]"):
        get_compressor("sign").decode({"negative": np.zeros(0, np.uint8), "zero": np.zeros(0, np.uint8)}, 0)


# ----------------------------------------------------------------------------- untrusted payloads


def _good(name, params, d=10):
    q = make(name, params)
    x = sample_x(d, seed=1)
    x[3] = 0.0
    return q, q.encode(x, seed=1)


def _with(payload, **changes):
    out = dict(payload)
    out.update(changes)
    return out


BAD_PAYLOADS = [
    # (name, params, how to break a good payload of d = 10, message fragment)
    ("identity", {}, lambda p: {}, "missing key"),
    ("identity", {}, lambda p: [p["values"]], "must be a dict"),
    ("identity", {}, lambda p: _with(p, extra=np.ones(1)), "unexpected key"),
    ("identity", {}, lambda p: _with(p, values=p["values"].tolist()), "numpy.ndarray"),
    ("identity", {}, lambda p: _with(p, values=p["values"].astype(np.float64)), "dtype float32"),
    ("identity", {}, lambda p: _with(p, values=p["values"].astype(">f4")), "dtype float32"),
    ("identity", {}, lambda p: _with(p, values=p["values"].reshape(2, 5)), "1-D"),
    ("identity", {}, lambda p: _with(p, values=p["values"][:9]), "length 10"),
    ("identity", {}, lambda p: _with(p, values=np.full(10, np.nan, np.float32)), "finite"),
    ("top-k", {"k": 3}, lambda p: _with(p, indices=np.array([1, 2, 10], np.int32)), r"\[0, 9\]"),
    ("top-k", {"k": 3}, lambda p: _with(p, indices=np.array([-1, 2, 5], np.int32)), r"\[0, 9\]"),
    ("top-k", {"k": 3}, lambda p: _with(p, indices=np.array([2, 2, 5], np.int32)), "strictly increasing"),
    ("top-k", {"k": 3}, lambda p: _with(p, indices=np.array([5, 2, 7], np.int32)), "strictly increasing"),
    ("top-k", {"k": 3}, lambda p: _with(p, indices=p["indices"].astype(np.int64)), "dtype int32"),
    ("top-k", {"k": 3}, lambda p: _with(p, values=np.array([1, np.inf, 2], np.float32)), "finite"),
    ("top-k", {"k": 3}, lambda p: _with(p, values=p["values"][:2], indices=p["indices"][:2]), "length 3"),
    ("rand-k", {"k": 3}, lambda p: _with(p, seed=p["seed"].astype(np.int64)), "dtype uint64"),
    ("rand-k", {"k": 3}, lambda p: _with(p, seed=np.zeros(2, np.uint64)), "length 1"),
    ("rand-k", {"k": 3}, lambda p: _with(p, seed=np.zeros(0, np.uint64)), "length 1"),
    ("rand-k", {"k": 3}, lambda p: _with(p, values=np.ones(4, np.float32)), "length 3"),
    ("rand-k", {"k": 3, "rescale": True}, lambda p: _with(p, values=np.full(3, 3e38, np.float32)), "non-finite"),
    ("qsgd", {"s": 4}, lambda p: _with(p, levels=np.full(10, 5, np.int8)), r"\[-4, 4\]"),
    ("qsgd", {"s": 4}, lambda p: _with(p, levels=np.full(10, -128, np.int8)), r"\[-4, 4\]"),
    ("qsgd", {"s": 4}, lambda p: _with(p, norm=np.array([-1.0], np.float32)), "non-negative"),
    ("qsgd", {"s": 4}, lambda p: _with(p, norm=np.array([np.inf], np.float32)), "finite"),
    ("qsgd", {"s": 4}, lambda p: _with(p, norm=np.ones(2, np.float32)), "length 1"),
    ("qsgd", {"s": 200}, lambda p: _with(p, levels=p["levels"].astype(np.int8)), "dtype int16"),
    ("qsgd", {"s": 2, "bucket_size": 4}, lambda p: _with(p, norm=np.ones(2, np.float32)), "length 3"),
    ("sign", {}, lambda p: _with(p, negative=np.zeros(1, np.uint8)), "2 bytes"),
    ("sign", {}, lambda p: _with(p, negative=np.array([0, 1], np.uint8)), "pad bit"),
    ("sign", {}, lambda p: _with(p, zero=np.zeros(1, np.uint8)), "2 bytes"),
    ("scaled-sign", {}, lambda p: _with(p, scale=np.array([np.nan], np.float32)), "finite"),
    ("scaled-sign", {}, lambda p: _with(p, scale=np.array([-2.0], np.float32)), "non-negative"),
    ("scaled-sign", {}, lambda p: _with(p, scale=np.array([], np.float32)), "length 1"),
    ("bernoulli-qsgd", {}, lambda p: _with(p, nonzero=np.full(2, 255, np.uint8)), "pad bit"),
    ("bernoulli-qsgd", {}, lambda p: _with(p, nonzero=np.array([255, 192], np.uint8)), "one bit per nonzero"),
    ("bernoulli-qsgd", {}, lambda p: _with(p, norm=np.array([np.inf], np.float32)), "finite"),
    ("bernoulli-qsgd", {}, lambda p: _with(p, norm=np.array([1.0, 1.0], np.float32)), "length 1"),
]


@pytest.mark.parametrize(("name", "params", "breaker", "match"), BAD_PAYLOADS)
def test_malformed_payloads_raise_payload_error(name, params, breaker, match):
    q, payload = _good(name, params)
    assert q.decode(payload, 10).shape == (10,)  # the unbroken payload is fine
    with pytest.raises(PayloadError, match=match):
        q.decode(breaker(payload), 10)


@pytest.mark.parametrize(("name", "params"), [c for c in CONFIGS if "k" not in c[1]], ids=lambda c: str(c))
def test_payload_for_another_length_is_rejected(name, params):
    # A fixed-k sparse payload fits every d above its largest index, so only k-by-ratio is checked there.
    q, payload = _good(name, params, d=16)
    with pytest.raises(PayloadError):
        q.decode(payload, 10 if "ratio" in params else 17)


def test_payload_from_ndarrays_checks_the_count():
    q = get_compressor("scaled-sign")
    with pytest.raises(PayloadError, match="expects 3 arrays"):
        payload_from_ndarrays(q, [np.zeros(1, np.uint8)])
    with pytest.raises(TypeError, match="Compressor instance"):
        payload_from_ndarrays("scaled-sign", [])


def test_payload_nbytes_checks_types():
    with pytest.raises(TypeError):
        payload_nbytes({"a": [1, 2]})


_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.int64, np.uint64, np.float16, np.float32, np.float64]


@st.composite
def _random_payloads(draw):
    """Payloads with the right keys but random dtypes, lengths and bytes (NaN, Inf, huge values...)."""
    name, params = draw(st.sampled_from(CONFIGS))
    q = make(name, params)
    payload = {}
    for key, want in q.dtypes.items():
        dtype = np.dtype(draw(st.sampled_from([want] * 3 + _DTYPES)))
        n = draw(st.integers(0, 24))
        raw = draw(st.binary(min_size=n * dtype.itemsize, max_size=n * dtype.itemsize))
        payload[key] = np.frombuffer(raw, dtype=dtype)
    return q, payload


@settings(max_examples=300, deadline=None)
@given(_random_payloads(), st.integers(1, 20))
def test_random_payloads_never_crash_or_leak_non_finite(q_payload, d):
    q, payload = q_payload
    if getattr(q, "k", None) is not None and q.k > d:
        d = q.k
    try:
        y = q.decode(payload, d)
    except PayloadError:
        return
    assert y.dtype == torch.float32 and y.shape == (d,) and bool(torch.isfinite(y).all())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-3, 12), min_size=4, max_size=4))
def test_top_k_indices_are_validated(indices):
    q = get_compressor("top-k", k=4)
    payload = {"indices": np.array(indices, np.int32), "values": np.ones(4, np.float32)}
    valid = all(0 <= i < 10 for i in indices) and all(a < b for a, b in zip(indices, indices[1:]))
    if valid:
        y = q.decode(payload, 10)
        assert y.sum() == 4 and bool((y[indices] == 1).all())
    else:
        with pytest.raises(PayloadError):
            q.decode(payload, 10)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**64 - 1))
def test_any_uint64_seed_decodes(seed):
    q = get_compressor("rand-k", k=2)
    y = q.decode({"seed": np.array([seed], np.uint64), "values": np.array([1.0, -1.0], np.float32)}, 6)
    assert sorted(y.tolist()) == [-1.0, 0.0, 0.0, 0.0, 0.0, 1.0]
