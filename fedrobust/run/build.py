"""What a run config describes, built and cached once per process: dataset, partitions, model, attack.

Flower builds a client for every message, in long-lived Ray actor processes; loading and
partitioning the dataset again each time would dominate small runs, so both are cached here
(keyed by the config values they depend on), and so is a Byzantine client's poisoned data.

Who is Byzantine (:func:`byzantine_clients`) is worked out from the config alone, so the server
(which records it) and every client (which acts on it) agree without talking.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from ..core.rng import stream_rng
from ..attacks import Attack
from ..attacks.run import build_attack, byzantine_clients  # noqa: F401 - re-exported: part of a run's build
from ..config import RunConfig, parse_params
from ..data import DatasetSplits, load_dataset, partition
from ..models import get_model

__all__ = [
    "load_splits",
    "client_indices",
    "client_data",
    "build_model",
    "build_attack",
    "byzantine_clients",
    "poisoned_client_data",
]


@functools.lru_cache(maxsize=4)
def _splits(dataset: str, data_dir: str, seed: int) -> DatasetSplits:
    return load_dataset(dataset, data_dir=data_dir or None, seed=seed)


@functools.lru_cache(maxsize=8)
def _partitions(
    dataset: str, data_dir: str, seed: int, num_clients: int, partitioner: str, alpha: float
) -> tuple[np.ndarray, ...]:
    labels = _splits(dataset, data_dir, seed).y_train
    kwargs = {"alpha": alpha} if partitioner == "dirichlet" else {}
    return tuple(partition(labels, num_clients, partitioner=partitioner, seed=seed, **kwargs))


def load_splits(cfg: RunConfig) -> DatasetSplits:
    """The run's dataset (train and test splits), loaded once per process."""
    return _splits(cfg.dataset, cfg.data_dir, cfg.seed)


def client_indices(cfg: RunConfig, partition_id: int) -> np.ndarray:
    """Training-set indices of one client's partition (seeded by the run seed)."""
    if not 0 <= partition_id < cfg.num_clients:
        raise ValueError(f"partition_id must lie in [0, num-clients={cfg.num_clients}), got {partition_id}")
    parts = _partitions(cfg.dataset, cfg.data_dir, cfg.seed, cfg.num_clients, cfg.partitioner, cfg.dirichlet_alpha)
    return parts[partition_id]


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
    attack: Attack, partition_id: int,
) -> tuple[np.ndarray, np.ndarray]:
    splits = _splits(dataset, data_dir, seed)
    idx = _partitions(dataset, data_dir, seed, num_clients, partitioner, alpha)[partition_id]
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
        int(partition_id),
    )
    return torch.from_numpy(x), torch.from_numpy(y)
