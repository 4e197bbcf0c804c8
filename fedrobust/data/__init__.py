"""Offline datasets, on-disk loaders and seeded partitioners; data stays as NumPy arrays.

- :func:`load_dataset` / :data:`DATASETS`: datasets by name, returned as :class:`DatasetSplits`.
- :func:`partition` / :data:`PARTITIONERS`: split sample indices among clients (``iid``, ``dirichlet``,
  ``label-shards``, ``half-class``).

Nothing here downloads at import time or imports torchvision (it is imported only for ``download=True``).
"""

from .partition import PARTITIONERS, partition
from .registry import DATASETS, load_dataset, register_dataset
from .splits import DatasetSplits

__all__ = ["DATASETS", "DatasetSplits", "PARTITIONERS", "load_dataset", "partition", "register_dataset"]
