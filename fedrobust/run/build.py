"""What a run config describes, built and cached once per process: dataset, partitions, model, attack.

Flower builds a client for every message, in long-lived Ray actor processes; loading and
partitioning the dataset again each time would dominate small runs, so both are cached here
(keyed by the config values they depend on), and so is a Byzantine client's poisoned data.

Who is Byzantine (:func:`byzantine_clients`) is worked out from the config alone, so the server
(which records it) and every client (which acts on it) agree without talking; so are the examples
held out of the training split before it is partitioned: first the validation split
(:func:`validation_indices`, ``validation-size``, stream ``validation``) from the whole training
split, then the root set of a strategy that trains on the server (:func:`root_indices`: FLTrust,
``root-size``, stream ``root-set``) from what is left; the clients split the rest. The three sets
are pairwise disjoint, and the test split is never touched. With ``validation-size = 0`` the root
set and the partitions are those of a run without a validation split.
"""

from __future__ import annotations

import copy
import functools
import threading
from typing import NamedTuple

import numpy as np
import torch

from ..core.rng import stream_rng
from ..attacks import Attack
from ..attacks.run import build_attack, byzantine_clients  # noqa: F401 - re-exported: part of a run's build
from ..config import ConfigError, RunConfig, parse_params
from ..data import DatasetSplits, load_dataset, partition
from ..data.partition import RUN_KEY_PARAMS
from ..data.holdout import MAX_HOLDOUT_FRACTION, Holdout, holdout_split
from ..models import MODELS, get_model
from ..models.params import reset_to

__all__ = [
    "load_splits",
    "client_indices",
    "client_data",
    "root_size",
    "root_indices",
    "root_data",
    "validation_indices",
    "validation_data",
    "build_model",
    "client_model",
    "build_attack",
    "byzantine_clients",
    "poisoned_client_data",
    "handed_data",
    "handed_keys",
    "take_over",
]


_handed: dict[tuple, object] = {}
"""Splits and partitions another process built and handed over (:mod:`fedrobust.run.handover`),
by the key of the cached function that builds them here."""


def handed_data(cfg: RunConfig) -> dict[tuple, object]:
    """The run's dataset splits and client partitions, by their cache keys (built when not yet cached).

    What :func:`take_over` in another process accepts: it then uses these values instead of
    loading and partitioning the dataset again.
    """
    splits, partitions = handed_keys(cfg)
    return {splits: load_splits(cfg), partitions: _run_partitions(cfg)}


def handed_keys(cfg: RunConfig) -> tuple[tuple, ...]:
    """The keys of :func:`handed_data` for ``cfg``, without building anything: runs with the same
    keys use the same splits and partitions."""
    return ("splits", *_splits_args(cfg)), ("partitions", *_partition_args(cfg))


def take_over(items: dict[tuple, object], *, replace: bool = False) -> None:
    """Use ``items`` (from :func:`handed_data` in another process) for the splits and partitions
    of their keys in this process; with ``replace``, in place of everything taken over before."""
    if replace:
        _handed.clear()
    _handed.update(items)


@functools.lru_cache(maxsize=4)
def _splits(dataset: str, data_dir: str, seed: int, dataset_params: str = "") -> DatasetSplits:
    handed = _handed.get(("splits", dataset, data_dir, seed, dataset_params))
    if handed is not None:
        return handed  # type: ignore[return-value]
    options = parse_params(dataset_params, "dataset-params")
    return load_dataset(dataset, data_dir=data_dir or None, seed=seed, **options)


class _HeldOut(NamedTuple):
    """The training split's indices: validation, root set, and the clients' rest (each sorted ``int64``)."""

    validation: np.ndarray
    root: np.ndarray
    rest: np.ndarray


@functools.lru_cache(maxsize=8)
def _held_out(
    dataset: str, data_dir: str, seed: int, validation: int, root: int, dataset_params: str = ""
) -> _HeldOut:
    """``validation`` examples drawn from the whole training split, then ``root`` from what is left."""
    num_train = _splits(dataset, data_dir, seed, dataset_params).num_train
    if validation and root and validation + root > MAX_HOLDOUT_FRACTION * num_train:
        raise ConfigError(
            f"validation-size={validation} + root-size={root} = {validation + root} is more than "
            f"{MAX_HOLDOUT_FRACTION:g} of the {num_train} training examples; the clients need the rest "
            f"(dataset {dataset}); lower validation-size or root-size"
        )
    everything = np.arange(num_train, dtype=np.int64)
    none = np.empty(0, dtype=np.int64)
    try:
        val = holdout_split(num_train, validation, seed, "validation", name="validation-size") if validation else None
        left = everything if val is None else val.rest
        # The root set is drawn from what the validation split leaves (all of it when there is none:
        # then left[i] == i, and the root set is that of a run without a validation split).
        drawn = holdout_split(len(left), root, seed, "root-set", name="root-size") if root else None
    except ValueError as err:
        raise ConfigError(f"{err} (dataset {dataset})") from None
    if drawn is None:
        return _HeldOut(none if val is None else val.held_out, none, left)
    return _HeldOut(none if val is None else val.held_out, left[drawn.held_out], left[drawn.rest])


@functools.lru_cache(maxsize=8)
def _root_set(
    dataset: str, data_dir: str, seed: int, size: int, validation: int = 0, dataset_params: str = ""
) -> Holdout:
    held = _held_out(dataset, data_dir, seed, validation, size, dataset_params)
    return Holdout(held.root, held.rest)  # rest: what the clients get (neither root nor validation)


def _partitioner_kwargs(partitioner: str, alpha: float, partitioner_params: str) -> dict:
    """The partitioner's parameters: ``partitioner-params``, plus its run keys of :data:`RUN_KEY_PARAMS`
    (``dirichlet``'s ``alpha`` is ``dirichlet-alpha``)."""
    kwargs = parse_params(partitioner_params, "partitioner-params")
    values = {"dirichlet-alpha": alpha}
    kwargs.update({name: values[key] for name, key in RUN_KEY_PARAMS.get(partitioner, {}).items()})
    return kwargs


@functools.lru_cache(maxsize=8)
def _partitions(
    dataset: str, data_dir: str, seed: int, num_clients: int, partitioner: str, alpha: float, held_out: int = 0,
    validation: int = 0, partitioner_params: str = "", dataset_params: str = "",
) -> tuple[np.ndarray, ...]:
    handed = _handed.get(("partitions", dataset, data_dir, seed, num_clients, partitioner, alpha, held_out, validation,
                          partitioner_params, dataset_params))
    if handed is not None:
        return handed  # type: ignore[return-value]
    labels = _splits(dataset, data_dir, seed, dataset_params).y_train
    kwargs = _partitioner_kwargs(partitioner, alpha, partitioner_params)
    rest = None
    if held_out or validation:  # the clients split what the validation split and the root set leave
        rest = _held_out(dataset, data_dir, seed, validation, held_out, dataset_params).rest
    try:
        if rest is None:  # every training example goes to the clients
            return tuple(partition(labels, num_clients, partitioner=partitioner, seed=seed, **kwargs))
        return tuple(rest[p] for p in partition(labels[rest], num_clients, partitioner=partitioner, seed=seed, **kwargs))
    except (ValueError, TypeError) as err:
        n = len(labels) if rest is None else len(rest)
        raise type(err)(f"{err} (dataset {dataset}: {n} training examples for num-clients={num_clients})") from None


def _splits_args(cfg: RunConfig) -> tuple:
    return cfg.dataset, cfg.data_dir, cfg.seed, cfg.dataset_params


def load_splits(cfg: RunConfig) -> DatasetSplits:
    """The run's dataset (train and test splits), loaded once per process."""
    return _splits(*_splits_args(cfg))


def root_size(cfg: RunConfig) -> int:
    """Training examples the run's server holds out as its root set: ``root-size`` when the
    strategy trains on the server (its class's ``uses_root_data``: fltrust), else 0."""
    from ..strategies import STRATEGIES  # the strategies import no run module; imported when needed

    return int(cfg.root_size) if STRATEGIES[cfg.strategy].uses_root_data else 0


def root_indices(cfg: RunConfig) -> np.ndarray:
    """Training-set indices of the server's root set (sorted; empty when the strategy has none).

    ``root-size`` examples drawn uniformly, seeded by the run seed (stream ``root-set``), from the
    training split before it is partitioned, after the validation split
    (:func:`validation_indices`) is taken out of it: :func:`client_indices` partitions the rest,
    so no client holds a root example, no root example is a validation one, and the test split is
    never touched. The server and every client call this with the same config and so agree.

    Raises
    ------
    ConfigError
        If ``root-size`` is more than half the training split, or ``validation-size`` +
        ``root-size`` is.
    """
    size = root_size(cfg)
    if not size:
        return np.empty(0, dtype=np.int64)
    return _root_set(cfg.dataset, cfg.data_dir, cfg.seed, size, cfg.validation_size, cfg.dataset_params).held_out


def root_data(cfg: RunConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The server's root examples and labels (:func:`root_indices`) as CPU tensors."""
    splits = load_splits(cfg)
    idx = root_indices(cfg)
    return torch.from_numpy(splits.x_train[idx]), torch.from_numpy(splits.y_train[idx])


def validation_indices(cfg: RunConfig) -> np.ndarray:
    """Training-set indices of the run's validation split (sorted; empty when ``validation-size = 0``).

    ``validation-size`` examples drawn uniformly, seeded by the run seed (stream ``validation``),
    from the whole training split, before the root set (:func:`root_indices`) is drawn from what
    is left and the rest is partitioned (:func:`client_indices`): no client and no root set holds
    a validation example, and the test split is never touched. The server evaluates the global
    model on it every round (``val_accuracy``, ``val_loss``).

    Raises
    ------
    ConfigError
        If ``validation-size`` is more than half the training split, or ``validation-size`` +
        ``root-size`` is (for a strategy with a root set).

    Examples
    --------
    >>> cfg = RunConfig(dataset="breast-cancer", num_clients=5, clients_per_round=5, validation_size=40)
    >>> val = validation_indices(cfg)
    >>> len(val), any(set(val.tolist()) & set(client_indices(cfg, p).tolist()) for p in range(5))
    (40, False)
    >>> validation_indices(cfg.replace(validation_size=0)).size
    0
    """
    if not cfg.validation_size:
        return np.empty(0, dtype=np.int64)
    return _held_out(
        cfg.dataset, cfg.data_dir, cfg.seed, int(cfg.validation_size), root_size(cfg), cfg.dataset_params
    ).validation


def validation_data(cfg: RunConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The validation examples and labels (:func:`validation_indices`) as CPU tensors (none when
    ``validation-size = 0``)."""
    splits = load_splits(cfg)
    idx = validation_indices(cfg)
    return torch.from_numpy(splits.x_train[idx]), torch.from_numpy(splits.y_train[idx])


def _partition_args(cfg: RunConfig) -> tuple:
    return (
        cfg.dataset, cfg.data_dir, cfg.seed, cfg.num_clients, cfg.partitioner, cfg.dirichlet_alpha, root_size(cfg),
        int(cfg.validation_size), cfg.partitioner_params, cfg.dataset_params,
    )


def _run_partitions(cfg: RunConfig) -> tuple[np.ndarray, ...]:
    return _partitions(*_partition_args(cfg))


def client_indices(cfg: RunConfig, partition_id: int) -> np.ndarray:
    """Training-set indices of one client's partition (seeded by the run seed); never one of the
    server's :func:`root_indices` nor of the :func:`validation_indices`."""
    if not 0 <= partition_id < cfg.num_clients:
        raise ValueError(f"partition_id must lie in [0, num-clients={cfg.num_clients}), got {partition_id}")
    return _run_partitions(cfg)[partition_id]


#: The most bytes of clients' training data :func:`client_data` lays out once per process (larger:
#: a partition is gathered at every call).
MAX_LAYOUT_BYTES = 256 << 20


class _Layout(NamedTuple):
    """The clients' training examples and labels, partition after partition, and where each starts
    (``starts[p]:starts[p + 1]``)."""

    x: torch.Tensor
    y: torch.Tensor
    starts: np.ndarray


@functools.lru_cache(maxsize=2)
def _layout(splits_args: tuple, partition_args: tuple) -> _Layout | None:
    """:class:`_Layout` of the partitions of ``partition_args`` (:func:`_partition_args`) of the
    splits of ``splits_args`` (:func:`_splits_args`), or None when it would take more than
    :data:`MAX_LAYOUT_BYTES`."""
    splits = _splits(*splits_args)
    parts = _partitions(*partition_args)
    sizes = [len(p) for p in parts]
    row_bytes = splits.x_train[:1].nbytes + splits.y_train[:1].nbytes
    if sum(sizes) * row_bytes > MAX_LAYOUT_BYTES:
        return None
    order = np.concatenate(parts)  # num-clients >= 1: never an empty list
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return _Layout(torch.from_numpy(splits.x_train[order]), torch.from_numpy(splits.y_train[order]), starts)


def client_data(cfg: RunConfig, partition_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One client's training examples and labels as CPU tensors, which the caller must not change.

    A client is built for every message: up to :data:`MAX_LAYOUT_BYTES`, the clients' data is laid
    out partition after partition once per process, and each call returns views of its partition
    there (the same values and order as gathering its :func:`client_indices`, without the copy);
    above that, each call gathers its partition.
    """
    idx = client_indices(cfg, partition_id)  # checks the id
    layout = _layout(_splits_args(cfg), _partition_args(cfg))
    if layout is not None:
        start, end = int(layout.starts[partition_id]), int(layout.starts[partition_id + 1])
        return layout.x[start:end], layout.y[start:end]
    splits = load_splits(cfg)
    return torch.from_numpy(splits.x_train[idx]), torch.from_numpy(splits.y_train[idx])


def build_model(cfg: RunConfig, splits: DatasetSplits | None = None) -> torch.nn.Module:
    """The run's model, initialised from the run seed (so every process builds the same x0).

    A copy of one model built per process and setting: a client is built for every message and
    the server's parameters overwrite its weights at once, so drawing the initial weights again
    each time (a third of a small in-process round) would buy nothing; the copy has the same weights
    bit for bit, and the global RNG is left as it is either way.
    """
    return copy.deepcopy(model_template(cfg, splits))


_working = threading.local()
"""Per thread: the clients' working copies, ``{id(template): (template, model)}``."""


def client_model(cfg: RunConfig, splits: DatasetSplits | None = None, *, parameters: bool = True) -> torch.nn.Module:
    """The run's model for a client built for one message: :func:`build_model`'s, without its copy.

    Each thread keeps one working copy per model and resets it (:func:`~fedrobust.models.params.reset_to`)
    from the template at every call, so it equals a fresh :func:`build_model` but costs no deep
    copy. The model returned earlier in the same thread is that same object: a caller must be done
    with it (a client built per message, used for it, then dropped, as every engine does) before
    it asks again. The server's models come from :func:`build_model`.

    With ``parameters=False`` the parameters may keep the values of the previous message (buffers,
    gradients and modes are reset all the same): for a client that copies
    :func:`model_template`'s parameters in at their first use unless the server's overwrite them
    first (:class:`~fedrobust.clients.base.HonestClient`'s ``parameters_from``), which spares one
    copy of the model per message.

    Examples
    --------
    >>> cfg = RunConfig(dataset="digits", model="logistic")
    >>> a = client_model(cfg)
    >>> with torch.no_grad():
    ...     _ = next(a.parameters()).add_(1.0)
    >>> b = client_model(cfg)
    >>> b is a, all(torch.equal(p, q) for p, q in zip(b.parameters(), build_model(cfg).parameters()))
    (True, True)
    """
    template = model_template(cfg, splits)
    copies = getattr(_working, "copies", None)
    if copies is None:
        copies = _working.copies = {}
    held = copies.get(id(template))
    if held is not None and held[0] is template and reset_to(held[1], template, parameters=parameters):
        return held[1]
    if len(copies) >= 4:  # as many as templates are kept
        copies.clear()
    model = copy.deepcopy(template)
    copies[id(template)] = (template, model)
    return model


def model_template(cfg: RunConfig, splits: DatasetSplits | None = None) -> torch.nn.Module:
    """The process's one model of this run's setting, initialised from the run seed, that
    :func:`build_model` copies and :func:`client_model` resets to. Never modify it.

    Examples
    --------
    >>> cfg = RunConfig(dataset="digits", model="logistic")
    >>> model_template(cfg) is model_template(cfg)
    True
    """
    splits = splits if splits is not None else load_splits(cfg)
    # The builder is part of the key: a model registered again under the same name builds anew.
    return _model_template(MODELS.get(cfg.model), cfg.model, tuple(splits.input_shape), int(splits.num_classes),
                           int(cfg.seed))


@functools.lru_cache(maxsize=4)
def _model_template(builder, name: str, input_shape: tuple[int, ...], num_classes: int, seed: int) -> torch.nn.Module:
    return get_model(name, input_shape=input_shape, num_classes=num_classes, seed=seed)


@functools.lru_cache(maxsize=1024)
def _poisoned(
    dataset: str, data_dir: str, seed: int, num_clients: int, partitioner: str, alpha: float,
    attack: Attack, partition_id: int, held_out: int = 0, validation: int = 0, partitioner_params: str = "",
    dataset_params: str = "",
) -> tuple[np.ndarray, np.ndarray]:
    splits = _splits(dataset, data_dir, seed, dataset_params)
    idx = _partitions(
        dataset, data_dir, seed, num_clients, partitioner, alpha, held_out, validation, partitioner_params, dataset_params
    )[partition_id]
    rng = stream_rng("poison", seed, partition_id)
    return attack.poison(splits.x_train[idx], splits.y_train[idx], splits.num_classes, rng)


def poisoned_client_data(
    cfg: RunConfig, partition_id: int, attack: Attack | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One client's training data after the data attack, as CPU tensors (cached per process).

    ``attack`` defaults to the run's (:func:`build_attack`). The poisoning is seeded by
    (``seed``, partition id), so every process poisons a client alike. An attack of another kind
    than ``data`` leaves the data as it is (a copy).
    """
    client_indices(cfg, partition_id)  # check the id before it becomes a cache key
    attack = build_attack(cfg) if attack is None else attack
    x, y = _poisoned(
        cfg.dataset, cfg.data_dir, cfg.seed, cfg.num_clients, cfg.partitioner, cfg.dirichlet_alpha, attack,
        int(partition_id), root_size(cfg), int(cfg.validation_size), cfg.partitioner_params, cfg.dataset_params,
    )
    return torch.from_numpy(x), torch.from_numpy(y)
