"""Compressed client protocols: the reply is the round's compressor's payload of the honest message."""

import numpy as np
import torch

from fedrobust.attacks import get_attack
from fedrobust.clients import (
    CLIENTS,
    ByzantineClient,
    CompressedGradientClient,
    CompressedLocalStepsClient,
    GradientClient,
    LocalStepsClient,
)
from fedrobust.clients.compressed import compressor_from_config
from fedrobust.compression import get_compressor, payload_from_ndarrays, payload_nbytes
from fedrobust.models import get_model
from fedrobust.core.ndarrays import flatten


def _data(n=40, f=5, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, f, generator=g), torch.randint(classes, (n,), generator=g)


def _model():
    return get_model("mlp", input_shape=(5,), num_classes=3, seed=1, hidden=7)


def _config(**kw):
    return {"server-round": 1, "lr": 0.1, "local-steps": 3, "batch-size": 8, "seed": 0, **kw}


def _pair(compressed_cls, honest_cls, partition_id=0):
    x, y = _data()
    return compressed_cls(_model(), x, y, partition_id=partition_id), honest_cls(_model(), x, y, partition_id=partition_id)


def test_registry():
    assert CLIENTS["compressed-gradient"] is CompressedGradientClient
    assert CLIENTS["compressed-local-steps"] is CompressedLocalStepsClient


def test_gradient_reply_is_the_top_k_payload_of_the_honest_gradient():
    client, honest = _pair(CompressedGradientClient, GradientClient)
    config = _config(compressor="top-k", **{"compressor-params": "k=5"})
    params = honest.get_parameters({})
    arrays, n, metrics = client.fit(params, config)
    plain, n_plain, _ = honest.fit(params, config)
    q = get_compressor("top-k", k=5)
    payload = payload_from_ndarrays(q, arrays)
    assert n == n_plain and metrics["bytes_sent"] == payload_nbytes(payload) == 5 * 8
    d = sum(a.size for a in plain)
    torch.testing.assert_close(q.decode(payload, d), q.compress(flatten(plain)))


def test_local_steps_reply_and_seeded_random_compressor():
    client, honest = _pair(CompressedLocalStepsClient, LocalStepsClient, partition_id=3)
    config = _config(compressor="rand-k", **{"compressor-params": "k=4"})
    params = honest.get_parameters({})
    a, _, _ = client.fit(params, config)
    b, _, _ = client.fit(params, config)
    c, _, _ = client.fit(params, {**config, "server-round": 2})
    assert all(np.array_equal(u, v) for u, v in zip(a, b))  # same (seed, partition, round): same draw
    q = compressor_from_config(config)
    delta = flatten(honest.fit(params, config)[0])
    decoded = q.decode(payload_from_ndarrays(q, a), delta.numel())
    nonzero = decoded != 0
    torch.testing.assert_close(decoded[nonzero], delta[nonzero])
    assert not all(np.array_equal(u, v) for u, v in zip(a, c))


def test_update_attack_corrupts_before_compression():
    client, honest = _pair(CompressedGradientClient, GradientClient)
    byz = ByzantineClient(client, get_attack("bit-flip", scale=100.0), num_clients=2, fraction=0.5, mode="dynamic")
    config = _config(compressor="top-k", **{"compressor-params": "k=5"})
    assert byz.is_byzantine(seed=0, server_round=1)
    params = honest.get_parameters({})
    arrays, _, _ = byz.fit(params, config)
    q = get_compressor("top-k", k=5)
    g = flatten(honest.fit(params, config)[0])
    torch.testing.assert_close(q.decode(payload_from_ndarrays(q, arrays), g.numel()), q.compress(-100.0 * g))
