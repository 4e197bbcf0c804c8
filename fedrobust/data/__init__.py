"""Offline datasets, on-disk loaders and seeded partitioners; data stays as NumPy arrays.

- :func:`load_dataset` / :data:`DATASETS`: datasets by name, returned as :class:`DatasetSplits`; also
  ``hf:<name-or-folder>``, any Hugging Face dataset through flwr-datasets' ``FederatedDataset``
  (:mod:`fedrobust.data.hf`).
- :func:`partition` / :data:`PARTITIONERS`: split sample indices among clients (``iid``, ``dirichlet``,
  ``label-shards``, ``half-class``, and flwr-datasets' ``pathological``, ``shard``, ``inner-dirichlet``,
  ``distribution``, ``size``, ``linear``, ``square``, ``exponential``).

Nothing here downloads at import time or imports torchvision (it is imported only for ``download=True``);
an ``hf:`` dataset is fetched, when its cache lacks it, only as it loads.
"""

from .partition import PARTITIONERS, partition
from .registry import DATASETS, load_dataset, register_dataset
from .splits import DatasetSplits

__all__ = ["DATASETS", "DatasetSplits", "PARTITIONERS", "load_dataset", "partition", "register_dataset"]
