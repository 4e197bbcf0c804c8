"""Partitioners: disjoint, covering as documented, deterministic, with the promised label structure."""

from __future__ import annotations

import numpy as np
import pytest

from fedrobust.data import PARTITIONERS, partition

LABELS = np.repeat(np.arange(10), 60)  # 600 samples, 60 per class
RNG_LABELS = np.random.default_rng(7).integers(0, 10, 997)  # unbalanced, odd size


def check_disjoint(parts, n):
    assert all(p.dtype == np.int64 and p.ndim == 1 for p in parts)
    assert all(np.all(np.diff(p) > 0) for p in parts)  # sorted, no repeats
    joined = np.concatenate(parts)
    assert len(np.unique(joined)) == len(joined)
    assert joined.min() >= 0 and joined.max() < n
    return joined


def test_registry_names():
    own = {"iid", "dirichlet", "label-shards", "half-class"}
    flwr = {"pathological", "shard", "inner-dirichlet", "distribution", "size", "linear", "square", "exponential"}
    assert set(PARTITIONERS) == own | flwr  # tests/test_partitioners_flwr.py covers the flwr-datasets ones


CASES = [
    ("iid", {}),
    ("dirichlet", {"alpha": 0.5}),
    ("label-shards", {"num_shards": 40, "shards_per_client": 4}),
    ("half-class", {}),
]


@pytest.mark.parametrize("name, kwargs", CASES)
@pytest.mark.parametrize("labels", [LABELS, RNG_LABELS], ids=["balanced", "unbalanced"])
def test_disjoint_covering_and_deterministic(name, kwargs, labels):
    parts = partition(labels, num_partitions=10, partitioner=name, seed=3, **kwargs)
    assert len(parts) == 10
    joined = check_disjoint(parts, len(labels))
    assert len(joined) == len(labels)  # these settings use every sample
    again = partition(labels, num_partitions=10, partitioner=name, seed=3, **kwargs)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    other = partition(labels, num_partitions=10, partitioner=name, seed=4, **kwargs)
    assert not all(np.array_equal(a, b) for a, b in zip(parts, other))


def test_iid_sizes_and_mixing():
    parts = partition(RNG_LABELS, num_partitions=7, partitioner="iid", seed=0)
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == len(RNG_LABELS)
    # each client sees (nearly) every class: a random 1/7 of ~100 samples per class
    assert all(len(np.unique(RNG_LABELS[p])) == 10 for p in parts)


def test_dirichlet_skew_depends_on_alpha():
    def mean_classes(alpha):
        parts = partition(LABELS, 10, "dirichlet", seed=0, alpha=alpha, min_partition_size=0)
        return np.mean([len(np.unique(LABELS[p])) for p in parts])

    assert mean_classes(0.05) < mean_classes(100.0)
    assert mean_classes(100.0) == 10
    with pytest.raises(ValueError, match="alpha"):
        partition(LABELS, 10, "dirichlet", alpha=0.0)


def test_dirichlet_min_partition_size():
    parts = partition(LABELS, 10, "dirichlet", seed=1, alpha=1.0, min_partition_size=20)
    assert min(len(p) for p in parts) >= 20


def test_label_shards_pure_shards_limit_labels():
    # 10 classes x 60 samples, 20 shards of 30: every shard holds one label
    parts = partition(LABELS, num_partitions=5, partitioner="label-shards", seed=0, num_shards=20, shards_per_client=3)
    joined = check_disjoint(parts, len(LABELS))
    assert all(len(p) == 90 for p in parts)
    assert len(joined) == 5 * 3 * 30  # 5 shards left over, assigned to no one
    assert all(len(np.unique(LABELS[p])) <= 3 for p in parts)
    # each client's samples come in whole shards: per-label counts are multiples of the shard size
    assert all(np.all(np.bincount(LABELS[p])[np.bincount(LABELS[p]) > 0] % 30 == 0) for p in parts)


def test_label_shards_bgmd_setup():
    labels = np.repeat(np.arange(10), 80)  # BGMD CIFAR-10 scheme: 80 shards, 8 per client, 10 clients
    parts = partition(labels, 10, "label-shards", seed=0, num_shards=80, shards_per_client=8)
    assert sorted(len(p) for p in parts) == [80] * 10
    assert all(len(np.unique(labels[p])) <= 8 for p in parts)
    assert len(check_disjoint(parts, len(labels))) == len(labels)


def test_label_shards_defaults_and_checks():
    parts = partition(LABELS, 10, "label-shards", seed=0)  # 2 shards per client, 20 shards
    assert all(len(p) == 60 and len(np.unique(LABELS[p])) <= 2 for p in parts)
    parts = partition(LABELS, 10, "label-shards", seed=0, num_shards=30)  # -> 3 per client
    assert all(len(p) == 60 for p in parts)
    with pytest.raises(ValueError, match="num_shards"):
        partition(LABELS, 10, "label-shards", num_shards=20, shards_per_client=3)
    with pytest.raises(ValueError, match="shards_per_client"):
        partition(LABELS, 10, "label-shards", shards_per_client=0)


@pytest.mark.parametrize("labels", [LABELS, RNG_LABELS], ids=["balanced", "unbalanced"])
def test_half_class_owner_holds_half(labels):
    parts = partition(labels, num_partitions=10, partitioner="half-class", seed=0)
    for c in range(10):
        held = np.sum(labels[parts[c]] == c)
        assert held >= np.sum(labels == c) / 2
    # the other half is spread evenly: every client's size is its own half plus ~1/10 of the rest
    rest = len(labels) - sum((np.sum(labels == c) + 1) // 2 for c in range(10))
    for c, p in enumerate(parts):
        own = (np.sum(labels == c) + 1) // 2
        assert len(p) - own in (rest // 10, rest // 10 + 1)


def test_half_class_fewer_clients_than_classes():
    parts = partition(LABELS, num_partitions=4, partitioner="half-class", seed=0)
    assert len(check_disjoint(parts, len(LABELS))) == len(LABELS)
    for c in range(10):
        assert np.sum(LABELS[parts[c % 4]] == c) >= 30


def test_argument_checks():
    with pytest.raises(ValueError, match="unknown partitioner"):
        partition(LABELS, 10, "random")
    with pytest.raises(ValueError, match="partitioner 'iid' takes no parameter 'alpha'; it takes: \\(none\\)"):
        partition(LABELS, 10, "iid", alpha=0.5)  # a parameter of another partitioner is not silently ignored
    with pytest.raises(ValueError, match="partitioner 'dirichlet' takes no parameter 'num_shards'"):
        partition(LABELS, 10, "dirichlet", num_shards=20)
    with pytest.raises(TypeError, match="self_balancing must be true or false"):
        partition(LABELS, 10, "dirichlet", self_balancing="no")
    with pytest.raises(ValueError, match="num_partitions"):
        partition(LABELS, 0)
    with pytest.raises(ValueError, match="num_partitions"):
        partition(LABELS[:5], 6)
    with pytest.raises(TypeError, match="labels"):
        partition(np.zeros(10, dtype=np.float32), 2)
    with pytest.raises(ValueError, match="labels"):
        partition(np.zeros((3, 2), dtype=int), 2)
    with pytest.raises(ValueError, match="seed"):
        partition(LABELS, 2, seed=-1)
