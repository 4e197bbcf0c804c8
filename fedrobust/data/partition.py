"""Seeded partitioners: split the sample indices of a labelled dataset among clients.

Every partitioner is deterministic for a seed and returns disjoint, sorted ``int64`` index arrays.

- ``iid``: a seeded shuffle, then flwr-datasets' ``IidPartitioner`` (contiguous equal parts); every sample
  is used, part sizes differ by at most one.
- ``dirichlet``: flwr-datasets' ``DirichletPartitioner`` (per class, proportions ~ Dir(alpha)); every sample
  is used; it re-draws (up to 10 times, with a warning each time) until each client holds at least
  ``min_partition_size`` samples, then raises ``ValueError``.
- ``label-shards`` (BGMD: Acharya, Hashemi, Jain, Sanghavi, Dhillon and Topcu (2022), "Robust Training in High
  Dimensions via Block Coordinate Geometric Median Descent", Sec. 7): seeded shuffle, stable sort by label,
  cut into ``num_shards`` equal shards (sizes differ by at most one, so no sample is lost in the cut), each
  client gets ``shards_per_client`` distinct random shards. Shards left over (``num_shards > num_partitions *
  shards_per_client``) are assigned to no one. Written here rather than with flwr-datasets'
  ``ShardPartitioner``, which floors the shard size and may then cut *more* than ``num_shards`` shards
  (1,000 samples, 80 shards -> 83 shards of 12), so it does not reproduce this scheme exactly.
- ``half-class`` (C-RSA: He, Zhu and Ling (2023), "C-RSA: Byzantine-robust and communication-efficient
  distributed learning in the non-convex and non-IID regime", Sec. 5): for the ``j``-th class (in sorted
  label order) a random half (rounded up) of its samples goes to client ``j mod num_partitions``; all the
  other samples are shuffled and spread evenly (sizes differ by at most one) over all clients. Every sample
  is used. With fewer clients than classes a client owns the halves of several classes.

flwr-datasets only ever sees a ``datasets.Dataset`` built in memory from a dict (no hub access).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..core.checks import check_int, check_seed


def _check_labels(labels) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"labels must hold integers (class indices), got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _label_dataset(labels: np.ndarray):
    import datasets

    return datasets.Dataset.from_dict({"label": labels, "idx": np.arange(len(labels), dtype=np.int64)})


def _collect(partitioner, num_partitions: int) -> list[np.ndarray]:
    return [np.sort(np.asarray(partitioner.load_partition(i)["idx"], dtype=np.int64)) for i in range(num_partitions)]


def iid(labels: np.ndarray, num_partitions: int, seed: int) -> list[np.ndarray]:
    """IID split: seeded shuffle, then flwr-datasets' ``IidPartitioner``."""
    from flwr_datasets.partitioner import IidPartitioner

    part = IidPartitioner(num_partitions=num_partitions)
    part.dataset = _label_dataset(labels).shuffle(seed=seed)
    return _collect(part, num_partitions)


def dirichlet(
    labels: np.ndarray, num_partitions: int, seed: int, alpha: float = 0.5, min_partition_size: int | None = None
) -> list[np.ndarray]:
    """Label-skewed split with per-class Dirichlet(alpha) proportions (flwr-datasets).

    ``min_partition_size`` defaults to ``min(10, len(labels) // num_partitions)``.
    """
    from flwr_datasets.partitioner import DirichletPartitioner

    alpha = float(alpha)
    if not np.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha must be a finite number > 0, got {alpha}")
    if min_partition_size is None:
        min_partition_size = min(10, len(labels) // num_partitions)
    min_partition_size = check_int(min_partition_size, "min_partition_size", low=0)
    part = DirichletPartitioner(
        num_partitions=num_partitions,
        partition_by="label",
        alpha=alpha,
        min_partition_size=min_partition_size,
        self_balancing=False,
        shuffle=True,
        seed=seed,
    )
    part.dataset = _label_dataset(labels)
    return _collect(part, num_partitions)


def label_shards(
    labels: np.ndarray,
    num_partitions: int,
    seed: int,
    num_shards: int | None = None,
    shards_per_client: int | None = None,
) -> list[np.ndarray]:
    """BGMD's shards: sort by label, cut into ``num_shards`` equal shards, give each client random shards.

    Defaults: ``shards_per_client = num_shards // num_partitions`` when only ``num_shards`` is given, else 2;
    ``num_shards = num_partitions * shards_per_client``.
    """
    n = len(labels)
    if shards_per_client is None:
        shards_per_client = 2 if num_shards is None else max(1, num_shards // num_partitions)
    shards_per_client = check_int(shards_per_client, "shards_per_client", low=1)
    if num_shards is None:
        num_shards = num_partitions * shards_per_client
    num_shards = check_int(num_shards, "num_shards", low=num_partitions * shards_per_client, high=n)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    order = order[np.argsort(labels[order], kind="stable")]
    shards = np.array_split(order, num_shards)
    chosen = rng.permutation(num_shards)[: num_partitions * shards_per_client].reshape(num_partitions, -1)
    return [np.sort(np.concatenate([shards[s] for s in row])) for row in chosen]


def half_class(labels: np.ndarray, num_partitions: int, seed: int) -> list[np.ndarray]:
    """C-RSA's non-IID split: half of class ``j`` to client ``j mod num_partitions``, the rest spread evenly."""
    rng = np.random.default_rng(seed)
    owned: list[list[np.ndarray]] = [[] for _ in range(num_partitions)]
    rest = []
    for j, c in enumerate(np.unique(labels)):
        members = rng.permutation(np.flatnonzero(labels == c))
        half = (len(members) + 1) // 2
        owned[j % num_partitions].append(members[:half])
        rest.append(members[half:])
    spread = np.array_split(rng.permutation(np.concatenate(rest)), num_partitions)
    return [np.sort(np.concatenate(own + [extra])).astype(np.int64) for own, extra in zip(owned, spread)]


#: Registered partitioners: name -> function(labels, num_partitions, seed, **options).
PARTITIONERS: dict[str, Callable[..., list[np.ndarray]]] = {
    "iid": iid,
    "dirichlet": dirichlet,
    "label-shards": label_shards,
    "half-class": half_class,
}


def partition(
    labels,
    num_partitions: int = 10,
    partitioner: str = "iid",
    seed: int = 0,
    alpha: float = 0.5,
    num_shards: int | None = None,
    shards_per_client: int | None = None,
    *,
    min_partition_size: int | None = None,
) -> list[np.ndarray]:
    """Split the indices of ``labels`` among ``num_partitions`` clients.

    Parameters
    ----------
    labels : array-like of int, shape (N,)
        Class index of every sample.
    num_partitions : int
        Number of clients, ``1 <= num_partitions <= N``.
    partitioner : str
        One of :data:`PARTITIONERS`: ``"iid"``, ``"dirichlet"``, ``"label-shards"``, ``"half-class"``
        (see the module docstring for each scheme and what happens to leftovers).
    seed : int
        Seed; the result is a deterministic function of all arguments.
    alpha : float
        Dirichlet concentration (``"dirichlet"`` only; smaller is more skewed).
    num_shards, shards_per_client : int, optional
        ``"label-shards"`` only (BGMD's CIFAR-10 setup: 80 shards, 8 per client for 10 clients).
    min_partition_size : int, optional
        ``"dirichlet"`` only: re-draw until every client holds at least this many samples.

    Returns
    -------
    list of numpy.ndarray
        One sorted ``int64`` index array per client; the arrays are pairwise disjoint.

    Examples
    --------
    >>> import numpy as np
    >>> parts = partition(np.repeat(np.arange(4), 5), num_partitions=4, partitioner="label-shards",
    ...                   seed=0, num_shards=4, shards_per_client=1)
    >>> sorted(len(np.unique(np.repeat(np.arange(4), 5)[p])) for p in parts)
    [1, 1, 1, 1]
    >>> [len(p) for p in partition(np.zeros(10, dtype=int), num_partitions=3, seed=1)]
    [4, 3, 3]
    """
    if partitioner not in PARTITIONERS:
        raise ValueError(f"unknown partitioner {partitioner!r}; choose one of {sorted(PARTITIONERS)}")
    arr = _check_labels(labels)
    num_partitions = check_int(num_partitions, "num_partitions", low=1, high=len(arr))
    seed = check_seed(seed)
    extra = {
        "dirichlet": {"alpha": alpha, "min_partition_size": min_partition_size},
        "label-shards": {"num_shards": num_shards, "shards_per_client": shards_per_client},
    }.get(partitioner, {})
    return PARTITIONERS[partitioner](arr, num_partitions, seed, **extra)
