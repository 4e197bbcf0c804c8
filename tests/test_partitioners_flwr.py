"""flwr-datasets' partitioners by name (``pathological``, ``shard``, ``inner-dirichlet``, ``distribution``,
``size``, ``linear``, ``square``, ``exponential``) and the run key ``partitioner-params``."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fedrobust.catalog import catalog
from fedrobust.config import ConfigError, RunConfig
from fedrobust.data import PARTITIONERS, partition
from fedrobust.data.partition import RUN_KEY_PARAMS, check_partitioner_params, partitioner_parameters

LABELS = np.repeat(np.arange(10), 60)  # 600 samples, 60 per class
RNG_LABELS = np.random.default_rng(7).integers(0, 10, 997)  # unbalanced, odd size
BIG_LABELS = np.arange(13_000) % 10  # enough for exponential's 10 shares

FLWR = ["pathological", "shard", "inner-dirichlet", "distribution", "size", "linear", "square", "exponential"]

# name, parameters, labels, whether every sample is used
CASES = [
    ("pathological", {}, LABELS, False),
    ("pathological", {"num_classes_per_partition": 3, "class_assignment_mode": "first-deterministic"}, RNG_LABELS, False),
    ("pathological", {"num_classes_per_partition": 2, "class_assignment_mode": "deterministic"}, LABELS, True),
    ("shard", {}, LABELS, True),
    ("shard", {"shard_size": 25, "keep_incomplete_shard": True}, RNG_LABELS, True),
    ("inner-dirichlet", {"alpha": 0.3}, RNG_LABELS, True),
    ("distribution", {}, LABELS, True),
    ("size", {"partition_sizes": "10:20:30:40:50:60:70:80:90:100"}, RNG_LABELS, False),
    ("linear", {}, RNG_LABELS, True),
    ("square", {}, LABELS, True),
    ("exponential", {}, BIG_LABELS, True),
]


def check_disjoint(parts, n):
    assert all(isinstance(p, np.ndarray) and p.dtype == np.int64 and p.ndim == 1 for p in parts)
    assert all(len(p) > 0 and np.all(np.diff(p) > 0) for p in parts)  # non-empty, sorted, no repeats
    joined = np.concatenate(parts)
    assert len(np.unique(joined)) == len(joined)
    assert joined.min() >= 0 and joined.max() < n
    return joined


def classes_of(labels, parts):
    return [set(np.unique(labels[p]).tolist()) for p in parts]


def test_every_fitting_flwr_partitioner_is_registered_after_fedrobusts_own():
    assert list(PARTITIONERS)[:4] == ["iid", "dirichlet", "label-shards", "half-class"]
    assert list(PARTITIONERS)[4:] == FLWR


@pytest.mark.parametrize("name, params, labels, covers", CASES, ids=lambda v: v if isinstance(v, str) else None)
def test_disjoint_sorted_int64_and_deterministic_for_a_seed(name, params, labels, covers):
    parts = partition(labels, 10, name, seed=3, **params)
    assert len(parts) == 10
    joined = check_disjoint(parts, len(labels))
    if covers:
        assert len(joined) == len(labels)
    again = partition(labels, 10, name, seed=3, **params)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    other = partition(labels, 10, name, seed=4, **params)  # the seeded shuffle (and draws) change
    assert not all(np.array_equal(a, b) for a, b in zip(parts, other))


# ------------------------------------------------------------------------------ what each promises
@pytest.mark.parametrize("labels", [LABELS, RNG_LABELS], ids=["balanced", "unbalanced"])
@pytest.mark.parametrize("k", [1, 2, 4])
def test_pathological_clients_hold_k_classes(labels, k):
    parts = partition(labels, 10, "pathological", seed=0, num_classes_per_partition=k)
    assert all(len(c) == k for c in classes_of(labels, parts))


def test_pathological_assignment_modes():
    det = partition(LABELS, 10, "pathological", seed=5, num_classes_per_partition=3, class_assignment_mode="deterministic")
    assert classes_of(LABELS, det) == [{i % 10, (i + 1) % 10, (i + 2) % 10} for i in range(10)]
    first = partition(LABELS, 12, "pathological", seed=5, num_classes_per_partition=2,
                      class_assignment_mode="first-deterministic")
    assert all(i % 10 in c and len(c) == 2 for i, c in enumerate(classes_of(LABELS, first)))
    # a class held by m clients is split evenly among them
    for c in range(10):
        counts = [np.sum(LABELS[p] == c) for p in det if np.any(LABELS[p] == c)]
        assert len(counts) == 3 and max(counts) - min(counts) <= 1 and sum(counts) == 60


def test_shard_pure_label_shards_of_equal_size():
    parts = partition(LABELS, 10, "shard", seed=0)  # 2 shards of 600 / 20 = 30 per client
    assert [len(p) for p in parts] == [60] * 10
    assert all(len(c) <= 2 for c in classes_of(LABELS, parts))
    # each client's samples come in whole shards of one label: per-label counts are multiples of 30
    assert all(np.all(np.bincount(LABELS[p])[np.bincount(LABELS[p]) > 0] % 30 == 0) for p in parts)
    three = partition(LABELS, 5, "shard", seed=0, num_shards_per_partition=3, shard_size=20)
    assert [len(p) for p in three] == [60] * 5 and all(len(c) <= 3 for c in classes_of(LABELS, three))
    # shard_size alone: every whole shard is dealt, some clients one more than others
    dealt = partition(LABELS, 7, "shard", seed=0, shard_size=40)  # 15 shards: one client gets 3, six get 2
    assert sorted(len(p) for p in dealt) == [80] * 6 + [120]


def test_inner_dirichlet_sizes_and_skew():
    sizes = [30, 40, 50, 60, 70, 80, 90, 60, 60, 50]
    parts = partition(LABELS, 10, "inner-dirichlet", seed=1, partition_sizes=sizes, alpha=1.0)
    assert [len(p) for p in parts] == sizes
    equal = partition(RNG_LABELS, 10, "inner-dirichlet", seed=1)  # default: equal sizes, every sample
    assert sorted({len(p) for p in equal}) == [99, 100] and sum(map(len, equal)) == len(RNG_LABELS)

    def mean_classes(alpha):
        return np.mean([len(c) for c in classes_of(LABELS, partition(LABELS, 10, "inner-dirichlet", seed=2, alpha=alpha))])

    assert mean_classes(0.05) < mean_classes(100.0)


def test_distribution_adjacent_classes_in_lognormal_amounts():
    parts = partition(LABELS, 20, "distribution", seed=0, num_unique_labels_per_partition=2,
                      preassigned_num_samples_per_label=3)
    for i, p in enumerate(parts):
        counts = np.bincount(LABELS[p], minlength=10)
        assert set(np.flatnonzero(counts)) == {i % 10, (i + 1) % 10}
        assert counts[i % 10] >= 3 and counts[(i + 1) % 10] >= 3
    assert len(check_disjoint(parts, len(LABELS))) == len(LABELS)
    # a larger sigma spreads the sizes further
    def spread(sigma):
        return np.std([len(p) for p in partition(LABELS, 10, "distribution", seed=0, sigma=sigma)])

    assert spread(0.1) < spread(3.0)


def test_size_gives_each_client_its_size():
    parts = partition(RNG_LABELS, 3, "size", seed=0, partition_sizes=[100, 5, 300])
    assert [len(p) for p in parts] == [100, 5, 300]
    assert [len(p) for p in partition(RNG_LABELS, 4, "size", seed=0, partition_sizes=50)] == [50] * 4
    assert [len(p) for p in partition(RNG_LABELS, 2, "size", seed=0, partition_sizes="1:996")] == [1, 996]


@pytest.mark.parametrize("name, units", [("linear", lambda i: i), ("square", np.square), ("exponential", np.exp)])
@pytest.mark.parametrize("n, clients", [(997, 4), (13_000, 10)])
def test_size_ratios_follow_the_partition_id(name, units, n, clients):
    labels = np.arange(n) % 10
    parts = partition(labels, clients, name, seed=0)
    weights = units(np.arange(1, clients + 1, dtype=float))
    want = np.floor(weights / weights.sum() * n).astype(int)
    want[-1] += n - want.sum()  # the rounding remainder goes to the last client
    assert [len(p) for p in parts] == want.tolist()


# ------------------------------------------------------------------------------ bad parameters
@pytest.mark.parametrize("name", list(PARTITIONERS))
def test_an_unknown_parameter_names_the_accepted_ones(name):
    accepted = partitioner_parameters(name)[0]
    with pytest.raises(ValueError, match=f"partitioner '{name}' takes no parameter 'bogus'; it takes: ") as info:
        partition(LABELS, 10, name, seed=0, bogus=1)
    message = str(info.value)
    assert "\n" not in message and message.endswith(", ".join(accepted) or "(none)")


@pytest.mark.parametrize(
    "name, params, labels, clients, expected",
    [
        ("pathological", {"num_classes_per_partition": 0}, LABELS, 10, "num_classes_per_partition must lie in [1, inf]"),
        ("pathological", {"num_classes_per_partition": 11}, LABELS, 10, "is more than the 10 classes"),
        ("pathological", {"class_assignment_mode": "fixed"}, LABELS, 10, "class_assignment_mode must be one of random"),
        ("shard", {"num_shards_per_partition": 400}, LABELS, 10, "need 4000 samples; the labels have 600"),
        ("shard", {"shard_size": 100}, LABELS, 10, "into fewer shards than the 10 clients"),
        ("shard", {"keep_incomplete_shard": "yes"}, LABELS, 10, "keep_incomplete_shard must be true or false"),
        ("inner-dirichlet", {"partition_sizes": [100] * 7}, LABELS, 7, "partition_sizes sum to 700, more than the 600"),
        ("inner-dirichlet", {"alpha": -1}, LABELS, 10, "alpha must be a finite number > 0"),
        ("distribution", {}, LABELS, 12, "multiple of the 10 classes, got 12"),
        ("distribution", {"preassigned_num_samples_per_label": 40}, LABELS, 10, "is too many for the smallest class"),
        ("distribution", {"sigma": 0}, LABELS, 10, "sigma must be a finite number > 0"),
        ("size", {}, LABELS, 3, "'size' needs partition_sizes"),
        ("size", {"partition_sizes": "1:2"}, LABELS, 3, "needs one size per client (3), got 2: '1:2'"),
        ("size", {"partition_sizes": "a:b:c"}, LABELS, 3, "whole numbers joined by ':'"),
        ("size", {"partition_sizes": [0, 1, 2]}, LABELS, 3, "partition_sizes must lie in [1, inf], got 0"),
        ("size", {"partition_sizes": [300, 300, 1]}, LABELS, 3, "sum to 601, more than the 600 samples"),
        ("exponential", {}, LABELS, 10, "600 samples are too few for 10 clients"),
    ],
)
def test_bad_values_give_one_clear_line(name, params, labels, clients, expected):
    with pytest.raises((ValueError, TypeError)) as info:
        partition(labels, clients, name, seed=0, **params)
    assert expected in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_run_key_parameters_are_refused_in_partitioner_params():
    assert RUN_KEY_PARAMS == {"dirichlet": {"alpha": "dirichlet-alpha"}}
    with pytest.raises(ValueError, match="alpha is the run key dirichlet-alpha; set it there"):
        check_partitioner_params("dirichlet", {"alpha": 0.1}, 10, run=True)
    assert check_partitioner_params("dirichlet", {"alpha": 0.1}, 10) == {"alpha": 0.1}  # the Python API takes it
    with pytest.raises(ValueError, match="it takes: min_partition_size, self_balancing$"):
        check_partitioner_params("dirichlet", {"beta": 1}, 10, run=True)
    # inner-dirichlet's alpha is its own parameter, not the run key dirichlet-alpha
    assert check_partitioner_params("inner-dirichlet", {"alpha": 2}, 10, run=True) == {"alpha": 2.0}


# ------------------------------------------------------------------------------ the run keys
def test_partitioner_params_are_checked_when_the_config_is():
    ok = RunConfig(partitioner="pathological", partitioner_params="num_classes_per_partition=3,"
                   "class_assignment_mode=first-deterministic")
    assert ok.partitioner_params.startswith("num_classes_per_partition=3")
    assert RunConfig(partitioner="label-shards", partitioner_params="num-shards=40, shards-per-client=4")
    for keys, expected in [
        (dict(partitioner="pathological", partitioner_params="classes=2"),
         "partitioner-params: partitioner 'pathological' takes no parameter 'classes'; it takes: "
         "num_classes_per_partition, class_assignment_mode"),
        (dict(partitioner="dirichlet", partitioner_params="alpha=0.1"), "partitioner-params: alpha is the run key dirichlet-alpha"),
        (dict(partitioner="size", num_clients=4, clients_per_round=4), "partitioner-params: partitioner 'size' needs partition_sizes"),
        (dict(partitioner="size", partitioner_params="partition_sizes=1:2"), "partitioner-params: partition_sizes needs one size per client (10), got 2: '1:2'"),
        (dict(partitioner="iid", partitioner_params="shard_size=3"), "partitioner-params: partitioner 'iid' takes no parameter 'shard_size'; it takes: (none)"),
        (dict(partitioner_params="oops"), "partitioner-params: expected name=value pairs"),
    ]:
        with pytest.raises(ConfigError) as info:
            RunConfig(**keys)
        assert str(info.value).startswith(expected) and "\n" not in str(info.value), str(info.value)


def test_a_partitioner_the_data_cannot_satisfy_fails_at_build_time_in_one_line():
    from fedrobust.run.build import client_indices

    cfg = RunConfig(dataset="breast-cancer", partitioner="pathological", partitioner_params="num_classes_per_partition=3",
                    num_clients=4, clients_per_round=4)
    with pytest.raises(ValueError) as info:
        client_indices(cfg, 0)
    message = str(info.value)
    assert message.startswith("partitioner 'pathological': num_classes_per_partition=3 is more than the 2 classes")
    assert "dataset breast-cancer" in message and "num-clients=4" in message and "\n" not in message


def test_the_run_passes_partitioner_params_and_dirichlet_alpha():
    from fedrobust.run.build import client_indices, load_splits

    cfg = RunConfig(dataset="digits", partitioner="inner-dirichlet", dirichlet_alpha=3.0,  # not inner-dirichlet's
                    partitioner_params="partition_sizes=100:110:120:130,alpha=0.2", num_clients=4, clients_per_round=4)
    labels = load_splits(cfg).y_train
    got = [client_indices(cfg, p) for p in range(4)]
    want = partition(labels, 4, "inner-dirichlet", seed=0, alpha=0.2, partition_sizes=[100, 110, 120, 130])
    assert all(np.array_equal(a, b) for a, b in zip(got, want))
    assert [len(p) for p in got] == [100, 110, 120, 130]
    # dirichlet gets dirichlet-alpha, and its own parameters from partitioner-params
    cfg = cfg.replace(partitioner="dirichlet", dirichlet_alpha=0.3, partitioner_params="min_partition_size=50")
    got = [client_indices(cfg, p) for p in range(4)]
    want = partition(labels, 4, "dirichlet", seed=0, alpha=0.3, min_partition_size=50)
    assert all(np.array_equal(a, b) for a, b in zip(got, want)) and min(map(len, got)) >= 50


def test_each_partitioner_is_listed_with_a_line_of_its_own():
    lines = catalog()["partitioner"]
    assert list(lines) == list(PARTITIONERS)
    assert all(line and "\n" not in line and not line.endswith("…") for line in lines.values()), lines
    assert len(set(lines.values())) == len(lines)
    assert "PathologicalPartitioner" in lines["pathological"] and "e**i" in lines["exponential"]


def test_a_tiny_run_with_a_flwr_partitioner():
    from fedrobust.run.inprocess import run_inprocess

    cfg = RunConfig(strategy="fedavg", dataset="digits", model="logistic", num_clients=4, clients_per_round=4,
                    rounds=2, local_steps=2, device="cpu", partitioner="shard",
                    partitioner_params="num_shards_per_partition=2")
    results = run_inprocess(cfg, warn=False)
    assert results["config"]["partitioner"] == "shard"
    assert results["config"]["partitioner-params"] == "num_shards_per_partition=2"
    assert len(results["rounds"]) == 2 and all(math.isfinite(r["loss"]) for r in results["rounds"])
