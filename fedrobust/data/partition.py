"""Seeded partitioners: split the sample indices of a labelled dataset among clients.

Every partitioner is deterministic for a seed and returns disjoint, sorted ``int64`` index arrays.
:func:`partition` calls one by name with its own parameters (a run passes them as
``partitioner-params``, :func:`check_partitioner_params` checks them).

- ``iid``: a seeded shuffle, then flwr-datasets' ``IidPartitioner`` (contiguous equal parts); every sample
  is used, part sizes differ by at most one.
- ``dirichlet``: flwr-datasets' ``DirichletPartitioner`` (per class, proportions ~ Dir(alpha)); every sample
  is used; it re-draws (up to 10 times, with a warning each time) until each client holds at least
  ``min_partition_size`` samples, then raises ``ValueError``. ``self_balancing=True`` stops giving a class
  to clients that already hold more than an equal share.
- ``label-shards`` (BGMD: Acharya, Hashemi, Jain, Sanghavi, Dhillon and Topcu (2022), "Robust Training in High
  Dimensions via Block Coordinate Geometric Median Descent", Sec. 7): seeded shuffle, stable sort by label,
  cut into ``num_shards`` equal shards (sizes differ by at most one, so no sample is lost in the cut), each
  client gets ``shards_per_client`` distinct random shards. Shards left over (``num_shards > num_partitions *
  shards_per_client``) are assigned to no one. Written here rather than with flwr-datasets'
  ``ShardPartitioner``, which floors the shard size and may then cut *more* than ``num_shards`` shards
  (1,000 samples, 80 shards -> 83 shards of 12), so it does not reproduce this scheme exactly (that
  scheme is ``shard``, below).
- ``half-class`` (C-RSA: He, Zhu and Ling (2023), "C-RSA: Byzantine-robust and communication-efficient
  distributed learning in the non-convex and non-IID regime", Sec. 5): for the ``j``-th class (in sorted
  label order) a random half (rounded up) of its samples goes to client ``j mod num_partitions``; all the
  other samples are shuffled and spread evenly (sizes differ by at most one) over all clients. Every sample
  is used. With fewer clients than classes a client owns the halves of several classes.

The other flwr-datasets partitioners that split the samples of a labelled set among a fixed number of
clients, each under a name of its own. Each sees the samples shuffled with the seed first (as
``flwr_datasets.FederatedDataset`` shuffles a dataset before partitioning it), with the classes numbered
``0 .. K-1`` in sorted order, and gets the seed for its own draws where it makes any:

- ``pathological`` (``PathologicalPartitioner``; Li, Diao, Chen and He (2022), "Federated Learning on
  Non-IID Data Silos: An Experimental Study"): every client holds ``num_classes_per_partition`` classes
  (default 2), chosen by ``class_assignment_mode``: ``random`` (default; a class no client draws is used by
  no one, and flwr-datasets warns), ``first-deterministic`` (client ``i``'s first class is ``i mod K``, the
  others random: the paper's) or ``deterministic`` (client ``i`` holds classes ``i, i+1, ...`` mod ``K``).
  A class's samples are split evenly among the clients that hold it.
- ``shard`` (``ShardPartitioner``; McMahan et al. (2017), "Communication-Efficient Learning of Deep Networks
  from Decentralized Data"): sort by label, cut into shards of ``shard_size`` consecutive samples, deal them
  out at random. With ``num_shards_per_partition`` (default 2 when neither is given) every client gets that
  many shards, of ``shard_size`` samples (default: the floor of ``N / (num_partitions x
  num_shards_per_partition)``); with ``shard_size`` alone every whole shard is dealt (some clients one more
  than others), and ``keep_incomplete_shard=True`` deals the last, smaller one too.
- ``inner-dirichlet`` (``InnerDirichletPartitioner``; Acar et al. (2021), "Federated Learning Based on
  Dynamic Regularization"): client sizes fixed by ``partition_sizes`` (default: equal sizes that use every
  sample); each client's class mix is drawn from Dir(``alpha``) (default 0.5), and its samples drawn one by one from it
  (a class that runs out is dropped from every mix).
- ``distribution`` (``DistributionPartitioner``; Li et al. (2020), "Federated Optimization in
  Heterogeneous Networks"): client ``i`` holds the ``num_unique_labels_per_partition`` classes ``i, i+1,
  ...`` mod ``K`` (default 2), in amounts proportional to log-normal(``mu``, ``sigma``) draws (defaults 0 and
  2, the seed's), each at least ``preassigned_num_samples_per_label`` (default 5); every sample is used.
  ``num_partitions`` must be a multiple of ``K``.
- ``size`` (``SizePartitioner``): client ``i`` gets ``partition_sizes[i]`` samples of the shuffled set
  (required; the samples left over are assigned to no one).
- ``linear``, ``square``, ``exponential`` (``LinearPartitioner``, ``SquarePartitioner``,
  ``ExponentialPartitioner``): client ``i`` (``i = 1 .. num_partitions``) gets a share of the shuffled set
  proportional to ``i``, ``i**2`` or ``e**i``, rounded down; the samples left over go to the last client.

Not offered: ``IidPartitioner`` (that is ``iid``), ``NaturalIdPartitioner`` and
``GroupedNaturalIdPartitioner`` (they group by an id column, e.g. a writer or a speaker, that a label
array does not have), ``ContinuousPartitioner`` (it sorts by a real-valued property, not a class),
``IdToSizeFncPartitioner`` (the base of ``linear``, ``square`` and ``exponential``; it takes a Python
function, which a run config cannot hold) and ``VerticalEvenPartitioner`` / ``VerticalSizePartitioner``
(they split the feature columns, not the samples).

flwr-datasets only ever sees a ``datasets.Dataset`` built in memory from a dict (no hub access).
"""

from __future__ import annotations

import inspect
import math
import numbers
import warnings
from collections.abc import Mapping
from typing import Any, Callable

import numpy as np

from ..core.checks import check_int, check_seed

__all__ = [
    "CLASS_ASSIGNMENT_MODES",
    "PARTITIONERS",
    "RUN_KEY_PARAMS",
    "check_partitioner_params",
    "partition",
    "partitioner_parameters",
]

#: The ``class_assignment_mode`` values of ``pathological``.
CLASS_ASSIGNMENT_MODES = ("random", "deterministic", "first-deterministic")

#: Partitioner parameters that are run keys of their own, partitioner -> {parameter: run key}: a run
#: passes the key's value, and ``partitioner-params`` may not name the parameter.
RUN_KEY_PARAMS: dict[str, dict[str, str]] = {"dirichlet": {"alpha": "dirichlet-alpha"}}


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
    labels: np.ndarray,
    num_partitions: int,
    seed: int,
    alpha: float = 0.5,
    min_partition_size: int | None = None,
    self_balancing: bool = False,
) -> list[np.ndarray]:
    """Label-skewed split with per-class Dirichlet(alpha) proportions (flwr-datasets).

    ``min_partition_size`` defaults to ``min(10, len(labels) // num_partitions)``; ``self_balancing``
    is flwr-datasets' (off by default).
    """
    from flwr_datasets.partitioner import DirichletPartitioner

    alpha = _alpha(alpha, 0)
    if min_partition_size is None:
        min_partition_size = min(10, len(labels) // num_partitions)
    min_partition_size = check_int(min_partition_size, "min_partition_size", low=0)
    part = DirichletPartitioner(
        num_partitions=num_partitions,
        partition_by="label",
        alpha=alpha,
        min_partition_size=min_partition_size,
        self_balancing=_bool(self_balancing, 0, "self_balancing"),
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


# ------------------------------------------------------------------ the other flwr-datasets partitioners


def _classes(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """The labels numbered ``0 .. K-1`` in sorted order (some flwr-datasets partitioners assume it), and K."""
    values, codes = np.unique(labels, return_inverse=True)
    return codes.astype(np.int64).reshape(-1), len(values)


def _shuffled(labels: np.ndarray, seed: int):
    """The in-memory label dataset, shuffled with ``seed`` (as ``iid`` and ``FederatedDataset`` do)."""
    return _label_dataset(labels).shuffle(seed=seed)


def _split(part, labels: np.ndarray, num_partitions: int, seed: int) -> list[np.ndarray]:
    part.dataset = _shuffled(labels, seed)
    with warnings.catch_warnings():  # pyarrow's deprecation notice inside datasets' sort, not the user's
        warnings.filterwarnings("ignore", message=".*null_placement.*", category=FutureWarning)
        return _collect(part, num_partitions)


def pathological(
    labels: np.ndarray,
    num_partitions: int,
    seed: int,
    *,
    num_classes_per_partition: int = 2,
    class_assignment_mode: str = "random",
) -> list[np.ndarray]:
    """k classes per client, k = num_classes_per_partition (flwr-datasets' PathologicalPartitioner).

    See the module docstring for ``class_assignment_mode``.
    """
    from flwr_datasets.partitioner import PathologicalPartitioner

    codes, k = _classes(labels)
    per_client = check_int(num_classes_per_partition, "num_classes_per_partition", low=1)
    if per_client > k:
        raise ValueError(f"num_classes_per_partition={per_client} is more than the {k} classes of the labels")
    part = PathologicalPartitioner(
        num_partitions=num_partitions,
        partition_by="label",
        num_classes_per_partition=per_client,
        class_assignment_mode=_mode(class_assignment_mode, num_partitions),
        shuffle=True,
        seed=seed,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parts = _split(part, codes, num_partitions, seed)
    for warning in caught:  # flwr-datasets' text names an argument it no longer has; say it in this API's words
        if "will NOT be used" in str(warning.message):
            unused = sorted(set(range(k)) - set(np.unique(np.concatenate([codes[p] for p in parts])).tolist()))
            warnings.warn(
                f"pathological: no client holds class(es) {unused} (class_assignment_mode={class_assignment_mode!r}); "
                "their samples are used by no one; class_assignment_mode='first-deterministic' uses every class "
                "when there are at least as many clients as classes",
                UserWarning,
                stacklevel=2,
            )
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return parts


def shard(
    labels: np.ndarray,
    num_partitions: int,
    seed: int,
    *,
    num_shards_per_partition: int | None = None,
    shard_size: int | None = None,
    keep_incomplete_shard: bool = False,
) -> list[np.ndarray]:
    """Label-sorted shards dealt out at random, as in FedAvg (flwr-datasets' ShardPartitioner).

    ``num_shards_per_partition`` defaults to 2 when ``shard_size`` is not given either; see the module
    docstring.
    """
    from flwr_datasets.partitioner import ShardPartitioner

    if num_shards_per_partition is None and shard_size is None:
        num_shards_per_partition = 2
    if num_shards_per_partition is not None:
        num_shards_per_partition = check_int(num_shards_per_partition, "num_shards_per_partition", low=1)
    if shard_size is not None:
        shard_size = check_int(shard_size, "shard_size", low=1)
    n = len(labels)
    if num_shards_per_partition is not None:
        size = shard_size if shard_size is not None else n // (num_partitions * num_shards_per_partition)
        if size < 1 or size * num_shards_per_partition * num_partitions > n:
            raise ValueError(
                f"{num_partitions} clients x num_shards_per_partition={num_shards_per_partition} shards of "
                f"{'shard_size=' if shard_size is not None else ''}{max(size, 1)} samples need "
                f"{max(size, 1) * num_shards_per_partition * num_partitions} samples; the labels have {n}"
            )
    elif (math.ceil(n / shard_size) if keep_incomplete_shard is True else n // shard_size) < num_partitions:
        raise ValueError(
            f"shard_size={shard_size} cuts {n} samples into fewer shards than the {num_partitions} clients"
        )
    codes, _ = _classes(labels)
    part = ShardPartitioner(
        num_partitions=num_partitions,
        partition_by="label",
        num_shards_per_partition=num_shards_per_partition,
        shard_size=shard_size,
        keep_incomplete_shard=_bool(keep_incomplete_shard, 0, "keep_incomplete_shard"),
        shuffle=True,
        seed=seed,
    )
    return _split(part, codes, num_partitions, seed)


def inner_dirichlet(
    labels: np.ndarray,
    num_partitions: int,
    seed: int,
    *,
    partition_sizes=None,
    alpha: float = 0.5,
) -> list[np.ndarray]:
    """Fixed client sizes, class mixes ~ Dir(alpha) (flwr-datasets' InnerDirichletPartitioner).

    ``partition_sizes`` defaults to equal sizes (differing by at most one) that use every sample.
    """
    from flwr_datasets.partitioner import InnerDirichletPartitioner

    n = len(labels)
    if partition_sizes is None:
        sizes = [len(p) for p in np.array_split(np.arange(n), num_partitions)]
    else:
        sizes = list(_sizes(partition_sizes, num_partitions))
    _check_total(sizes, n)
    codes, _ = _classes(labels)
    part = InnerDirichletPartitioner(
        partition_sizes=sizes, partition_by="label", alpha=_alpha(alpha, num_partitions), shuffle=True, seed=seed
    )
    with warnings.catch_warnings():  # the sizes leave samples out on purpose when they sum to less than n
        warnings.filterwarnings("ignore", message="The sum of the partition_sizes", category=UserWarning)
        return _split(part, codes, num_partitions, seed)


def distribution(
    labels: np.ndarray,
    num_partitions: int,
    seed: int,
    *,
    num_unique_labels_per_partition: int = 2,
    preassigned_num_samples_per_label: int = 5,
    mu: float = 0.0,
    sigma: float = 2.0,
) -> list[np.ndarray]:
    """FedProx's split: adjacent classes, log-normal amounts (flwr-datasets' DistributionPartitioner).

    The ``(K, num_unique_labels_per_partition * num_partitions / K)`` distribution array is drawn from
    log-normal(``mu``, ``sigma``) with the seed; ``num_partitions`` must be a multiple of the K classes.
    """
    from flwr_datasets.partitioner import DistributionPartitioner

    codes, k = _classes(labels)
    per_client = check_int(num_unique_labels_per_partition, "num_unique_labels_per_partition", low=1)
    preassigned = check_int(preassigned_num_samples_per_label, "preassigned_num_samples_per_label", low=0)
    mu, sigma = _finite(mu, 0, "mu"), _positive(sigma, 0, "sigma")
    if per_client > k:
        raise ValueError(f"num_unique_labels_per_partition={per_client} is more than the {k} classes of the labels")
    if num_partitions % k:
        raise ValueError(
            f"distribution needs the number of clients to be a multiple of the {k} classes, got {num_partitions}"
        )
    columns = per_client * num_partitions // k
    counts = np.bincount(codes, minlength=k)
    if counts.min() - preassigned * columns < columns:
        raise ValueError(
            f"preassigned_num_samples_per_label={preassigned} x {columns} clients per class is too many for the "
            f"smallest class ({counts.min()} samples); lower it"
        )
    array = np.random.default_rng(seed).lognormal(mu, sigma, size=(k, columns))
    part = DistributionPartitioner(
        distribution_array=array,
        num_partitions=num_partitions,
        num_unique_labels_per_partition=per_client,
        partition_by="label",
        preassigned_num_samples_per_label=preassigned,
        rescale=True,
        shuffle=True,
        seed=seed,
    )
    return _split(part, codes, num_partitions, seed)


def size(labels: np.ndarray, num_partitions: int, seed: int, *, partition_sizes) -> list[np.ndarray]:
    """Client i gets partition_sizes[i] samples of a seeded shuffle (flwr-datasets' SizePartitioner).

    Samples beyond the sizes' sum are assigned to no one.
    """
    from flwr_datasets.partitioner import SizePartitioner

    sizes = list(_sizes(partition_sizes, num_partitions))
    _check_total(sizes, len(labels))
    with warnings.catch_warnings():  # the sizes leave samples out on purpose when they sum to less than n
        warnings.filterwarnings("ignore", message="The sum of partition sizes", category=UserWarning)
        return _split(SizePartitioner(partition_sizes=sizes), labels, num_partitions, seed)


def _id_to_size(cls_name: str, share: str, units: Callable[[np.ndarray], np.ndarray]):
    def partitioner(labels: np.ndarray, num_partitions: int, seed: int) -> list[np.ndarray]:
        import flwr_datasets.partitioner as flwr_partitioners

        weights = units(np.arange(1, num_partitions + 1, dtype=float))
        first = int(weights[0] / weights.sum() * len(labels))  # the smallest share, rounded down as flwr-datasets does
        if first < 1:
            need = math.ceil(weights.sum() / weights[0])
            raise ValueError(
                f"{len(labels)} samples are too few for {num_partitions} clients: the first client's share "
                f"({share} for i = 1) would round down to 0 samples (it needs at least {need})"
            )
        return _split(getattr(flwr_partitioners, cls_name)(num_partitions=num_partitions), labels, num_partitions, seed)

    partitioner.__name__ = partitioner.__qualname__ = cls_name[: -len("Partitioner")].lower()
    partitioner.__doc__ = (
        f"Shares proportional to {share} for clients i = 1..n (flwr-datasets' {cls_name}).\n\n"
        "The shares of a seeded shuffle, rounded down; the samples left over go to the last client."
    )
    return partitioner


linear = _id_to_size("LinearPartitioner", "i", lambda i: i)
square = _id_to_size("SquarePartitioner", "i**2", np.square)
exponential = _id_to_size("ExponentialPartitioner", "e**i", np.exp)


# ------------------------------------------------------------------ parameter checks


def _positive(value, num_partitions: int, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(float(value)) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return float(value)


def _alpha(value, num_partitions: int) -> float:
    return _positive(value, num_partitions, "alpha")


def _finite(value, num_partitions: int, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _bool(value, num_partitions: int, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be true or false, got {value!r}")
    return bool(value)


def _mode(value, num_partitions: int) -> str:
    if value not in CLASS_ASSIGNMENT_MODES:
        raise ValueError(f"class_assignment_mode must be one of {', '.join(CLASS_ASSIGNMENT_MODES)}, got {value!r}")
    return value


def _sizes(value, num_partitions: int, name: str = "partition_sizes") -> tuple[int, ...]:
    """One size per client: a sequence, sizes joined by ``:`` (``"100:200:300"``), or one int for every client."""
    given = value
    if isinstance(value, str):
        try:
            value = [int(part) for part in value.split(":")]
        except ValueError:
            raise ValueError(
                f"{name} must be whole numbers joined by ':', one per client (e.g. '100:200:300'), got {value!r}"
            ) from None
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = [value] * num_partitions
    try:
        sizes = tuple(check_int(v, name, low=1) for v in value)
    except TypeError:
        raise TypeError(f"{name} must be whole numbers, one per client, got {given!r}") from None
    if len(sizes) != num_partitions:
        raise ValueError(f"{name} needs one size per client ({num_partitions}), got {len(sizes)}: {given!r}")
    return sizes


def _check_total(sizes, n: int) -> None:
    if sum(sizes) > n:
        raise ValueError(f"partition_sizes sum to {sum(sizes)}, more than the {n} samples")


def _int_at_least(low: int):
    return lambda value, num_partitions, name: check_int(value, name, low=low)


#: Checks of the parameters by name, before any data is seen: ``check(value, num_partitions, name)``
#: returns the value to pass, or raises ValueError / TypeError.
_PARAM_CHECKS: dict[str, Callable[[Any, int, str], Any]] = {
    "alpha": lambda value, n, name: _positive(value, n, name),
    "min_partition_size": _int_at_least(0),
    "self_balancing": _bool,
    "num_shards": _int_at_least(1),
    "shards_per_client": _int_at_least(1),
    "num_classes_per_partition": _int_at_least(1),
    "class_assignment_mode": lambda value, n, name: _mode(value, n),
    "num_shards_per_partition": _int_at_least(1),
    "shard_size": _int_at_least(1),
    "keep_incomplete_shard": _bool,
    "partition_sizes": _sizes,
    "num_unique_labels_per_partition": _int_at_least(1),
    "preassigned_num_samples_per_label": _int_at_least(0),
    "mu": _finite,
    "sigma": _positive,
}


#: Registered partitioners: name -> function(labels, num_partitions, seed, **params).
PARTITIONERS: dict[str, Callable[..., list[np.ndarray]]] = {
    "iid": iid,
    "dirichlet": dirichlet,
    "label-shards": label_shards,
    "half-class": half_class,
    "pathological": pathological,
    "shard": shard,
    "inner-dirichlet": inner_dirichlet,
    "distribution": distribution,
    "size": size,
    "linear": linear,
    "square": square,
    "exponential": exponential,
}


def partitioner_parameters(name: str) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """The parameters partitioner ``name`` takes after ``(labels, num_partitions, seed)``.

    Returns
    -------
    tuple
        ``(names, required, any_name)``: every parameter's name in order, those without a default,
        and whether it takes ``**kwargs`` too.

    Examples
    --------
    >>> partitioner_parameters("pathological")
    (('num_classes_per_partition', 'class_assignment_mode'), (), False)
    >>> partitioner_parameters("size")
    (('partition_sizes',), ('partition_sizes',), False)
    """
    if name not in PARTITIONERS:
        raise ValueError(f"unknown partitioner {name!r}; choose one of {', '.join(PARTITIONERS)}")
    params = list(inspect.signature(PARTITIONERS[name]).parameters.values())[3:]
    named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return (
        tuple(p.name for p in named),
        tuple(p.name for p in named if p.default is p.empty),
        any(p.kind is p.VAR_KEYWORD for p in params),
    )


_HINTS = {"partition_sizes": " (one size per client joined by ':', e.g. partition_sizes=100:200:300)"}


def check_partitioner_params(
    name: str, params: Mapping[str, Any], num_partitions: int, *, run: bool = False
) -> dict[str, Any]:
    """Check the parameters of partitioner ``name`` before any data is seen; return them ready to pass.

    Parameters
    ----------
    name : str
        A key of :data:`PARTITIONERS`.
    params : mapping
        Parameter name -> value, in the partitioner's own names (``num_classes_per_partition``); a
        ``None`` value means the default.
    num_partitions : int
        The number of clients (``partition_sizes`` needs one size per client).
    run : bool
        ``params`` come from the run key ``partitioner-params``: the parameters of
        :data:`RUN_KEY_PARAMS` are refused there (the run passes its key's value).

    Raises
    ------
    ValueError, TypeError
        One line: a parameter the partitioner does not take (naming those it takes), a missing one, or
        a value of the wrong type or out of range.

    Examples
    --------
    >>> check_partitioner_params("size", {"partition_sizes": "10:20:30"}, 3)
    {'partition_sizes': (10, 20, 30)}
    >>> check_partitioner_params("pathological", {"num_classes": 2}, 10)
    Traceback (most recent call last):
    ...
    ValueError: partitioner 'pathological' takes no parameter 'num_classes'; it takes: num_classes_per_partition, class_assignment_mode
    >>> check_partitioner_params("dirichlet", {"alpha": 0.1}, 10, run=True)
    Traceback (most recent call last):
    ...
    ValueError: alpha is the run key dirichlet-alpha; set it there
    """
    names, required, any_name = partitioner_parameters(name)
    run_keys = RUN_KEY_PARAMS.get(name, {}) if run else {}
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key in run_keys:
            raise ValueError(f"{key} is the run key {run_keys[key]}; set it there")
        if key not in names and not any_name:
            accepted = [n for n in names if n not in run_keys]
            raise ValueError(
                f"partitioner {name!r} takes no parameter {key!r}; it takes: {', '.join(accepted) or '(none)'}"
            )
        check = _PARAM_CHECKS.get(key)
        out[key] = value if value is None or check is None else check(value, num_partitions, key)
    missing = [key for key in required if out.get(key) is None and key not in run_keys]
    if missing:
        needs = ", ".join(key + _HINTS.get(key, "") for key in missing)
        raise ValueError(f"partitioner {name!r} needs {needs}")
    return out


def partition(labels, num_partitions: int = 10, partitioner: str = "iid", seed: int = 0, **params) -> list[np.ndarray]:
    """Split the indices of ``labels`` among ``num_partitions`` clients.

    Parameters
    ----------
    labels : array-like of int, shape (N,)
        Class index of every sample.
    num_partitions : int
        Number of clients, ``1 <= num_partitions <= N``.
    partitioner : str
        One of :data:`PARTITIONERS`: ``"iid"``, ``"dirichlet"``, ``"label-shards"``, ``"half-class"``,
        ``"pathological"``, ``"shard"``, ``"inner-dirichlet"``, ``"distribution"``, ``"size"``,
        ``"linear"``, ``"square"``, ``"exponential"`` (see the module docstring for each scheme and what
        happens to leftovers).
    seed : int
        Seed; the result is a deterministic function of all arguments.
    **params
        The partitioner's own parameters (``None`` = its default), e.g. ``alpha`` and
        ``min_partition_size`` (``"dirichlet"``; a smaller ``alpha`` is more skewed), ``num_shards`` and
        ``shards_per_client`` (``"label-shards"``; BGMD's CIFAR-10 setup: 80 shards, 8 per client for 10
        clients), ``num_classes_per_partition`` (``"pathological"``), ``partition_sizes`` (``"size"``,
        ``"inner-dirichlet"``: a sequence, or sizes joined by ``:``); :func:`partitioner_parameters`
        names them all.

    Returns
    -------
    list of numpy.ndarray
        One sorted ``int64`` index array per client; the arrays are pairwise disjoint.

    Raises
    ------
    ValueError, TypeError
        An unknown partitioner or parameter, a bad value, or data the scheme cannot split so (one
        line, starting ``partitioner '<name>':`` when the scheme itself refuses).

    Examples
    --------
    >>> import numpy as np
    >>> parts = partition(np.repeat(np.arange(4), 5), num_partitions=4, partitioner="label-shards",
    ...                   seed=0, num_shards=4, shards_per_client=1)
    >>> sorted(len(np.unique(np.repeat(np.arange(4), 5)[p])) for p in parts)
    [1, 1, 1, 1]
    >>> [len(p) for p in partition(np.zeros(10, dtype=int), num_partitions=3, seed=1)]
    [4, 3, 3]
    >>> [len(p) for p in partition(np.arange(20) % 2, 3, "size", seed=0, partition_sizes="2:4:6")]
    [2, 4, 6]
    """
    if partitioner not in PARTITIONERS:
        raise ValueError(f"unknown partitioner {partitioner!r}; choose one of {sorted(PARTITIONERS)}")
    arr = _check_labels(labels)
    num_partitions = check_int(num_partitions, "num_partitions", low=1, high=len(arr))
    seed = check_seed(seed)
    given = check_partitioner_params(partitioner, {k: v for k, v in params.items() if v is not None}, num_partitions)
    try:
        return PARTITIONERS[partitioner](arr, num_partitions, seed, **given)
    except (ValueError, TypeError) as err:
        raise type(err)(f"partitioner {partitioner!r}: {' '.join(str(err).split())}") from None
