"""What a run config describes, built and cached once per process: dataset, partitions, model, attack.

Flower builds a client for every message, in long-lived Ray actor processes; loading and
partitioning the dataset again each time would dominate small runs, so both are cached here
(keyed by the config values they depend on), and so is a Byzantine client's poisoned data.

Who is Byzantine (:func:`byzantine_clients`) is worked out from the config alone, so the server
(which records it) and every client (which acts on it) agree without talking; so is the root set
of a strategy that trains on the server (:func:`root_indices`: FLTrust), which the partitions
leave out.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from ..core.rng import stream_rng
from ..attacks import Attack
from ..attacks.run import build_attack, byzantine_clients  # noqa: F401 - re-exported: part of a run's build
from ..config import ConfigError, RunConfig, parse_params
from ..data import DatasetSplits, load_dataset, partition
from ..data.holdout import Holdout, holdout_split
from ..models import get_model

__all__ = [
    "load_splits",
    "client_indices",
    "client_data",
    "root_size",
    "root_indices",
    "root_data",
    "build_model",
    "build_attack",
    "byzantine_clients",
    "poisoned_client_data",
]


@functools.lru_cache(maxsize=4)
def _splits(dataset: str, data_dir: str, seed: int) -> DatasetSplits:
    return load_dataset(dataset, data_dir=data_dir or None, seed=seed)


@functools.lru_cache(maxsize=8)
def _root_set(dataset: str, data_dir: str, seed: int, size: int) -> Holdout:
    num_train = _splits(dataset, data_dir, seed).num_train
    try:
        return holdout_split(num_train, size, seed, "root-set", name="root-size")
    except ValueError as err:
        raise ConfigError(f"{err} (dataset {dataset})") from None


@functools.lru_cache(maxsize=8)
def _partitions(
    dataset: str, data_dir: str, seed: int, num_clients: int, partitioner: str, alpha: float, held_out: int = 0
) -> tuple[np.ndarray, ...]:
    labels = _splits(dataset, data_dir, seed).y_train
    kwargs = {"alpha": alpha} if partitioner == "dirichlet" else {}
    if not held_out:  # every training example goes to the clients
        return tuple(partition(labels, num_clients, partitioner=partitioner, seed=seed, **kwargs))
    rest = _root_set(dataset, data_dir, seed, held_out).rest  # the clients split what the server leaves them
    return tuple(rest[p] for p in partition(labels[rest], num_clients, partitioner=partitioner, seed=seed, **kwargs))


def load_splits(cfg: RunConfig) -> DatasetSplits:
    """The run's dataset (train and test splits), loaded once per process."""
    return _splits(cfg.dataset, cfg.data_dir, cfg.seed)


def root_size(cfg: RunConfig) -> int:
    """Training examples the run's server holds out as its root set: ``root-size`` when the
    strategy trains on the server (its class's ``uses_root_data``: fltrust), else 0."""
    from ..strategies import STRATEGIES  # the strategies import no run module; imported when needed

    return int(cfg.root_size) if STRATEGIES[cfg.strategy].uses_root_data else 0


def root_indices(cfg: RunConfig) -> np.ndarray:
    """Training-set indices of the server's root set (sorted; empty when the strategy has none).

    ``root-size`` examples drawn uniformly, seeded by the run seed (stream ``root-set``), from the
    training split before it is partitioned: :func:`client_indices` partitions the rest, so no
    client holds a root example, and the test split is never touched. The server and every
    client call this with the same config and so agree.

    Raises
    ------
    ConfigError
        If ``root-size`` is more than half the training split.
    """
    size = root_size(cfg)
    if not size:
        return np.empty(0, dtype=np.int64)
    return _root_set(cfg.dataset, cfg.data_dir, cfg.seed, size).held_out


def root_data(cfg: RunConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The server's root examples and labels (:func:`root_indices`) as CPU tensors."""
    splits = load_splits(cfg)
    idx = root_indices(cfg)
    return torch.from_numpy(splits.x_train[idx]), torch.from_numpy(splits.y_train[idx])


def _run_partitions(cfg: RunConfig) -> tuple[np.ndarray, ...]:
    return _partitions(
        cfg.dataset, cfg.data_dir, cfg.seed, cfg.num_clients, cfg.partitioner, cfg.dirichlet_alpha, root_size(cfg)
    )


def client_indices(cfg: RunConfig, partition_id: int) -> np.ndarray:
    """Training-set indices of one client's partition (seeded by the run seed); never one of the
    server's :func:`root_indices`."""
    if not 0 <= partition_id < cfg.num_clients:
        raise ValueError(f"partition_id must lie in [0, num-clients={cfg.num_clients}), got {partition_id}")
    return _run_partitions(cfg)[partition_id]


def client_data(cfg: RunConfig, partition_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One client's training examples and labels as CPU tensors."""
    splits = load_splits(cfg)
    idx = client_indices(cfg, partition_id)
    return torch.from_numpy(splits.x_train[idx]), torch.from_numpy(splits.y_train[idx])


def build_model(cfg: RunConfig, splits: DatasetSplits | None = None) -> torch.nn.Module:
    """The run's model, initialised from the run seed (so every process builds the same x0)."""
    splits = splits if splits is not None else load_splits(cfg)
    return get_model(cfg.model, input_shape=splits.input_shape, num_classes=splits.num_classes, seed=cfg.seed)


@functools.lru_cache(maxsize=1024)
def _poisoned(
    dataset: str, data_dir: str, seed: int, num_clients: int, partitioner: str, alpha: float,
    attack: Attack, partition_id: int, held_out: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    splits = _splits(dataset, data_dir, seed)
    idx = _partitions(dataset, data_dir, seed, num_clients, partitioner, alpha, held_out)[partition_id]
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
        int(partition_id), root_size(cfg),
    )
    return torch.from_numpy(x), torch.from_numpy(y)
