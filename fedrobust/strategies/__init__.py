"""Flower strategies (server logic) for robust federated learning.

Each strategy is a thin class over the pure functions of :mod:`fedrobust.aggregators` and
:mod:`fedrobust.compression`; the shared server loop is :class:`~fedrobust.strategies.base.VectorStrategy`.
``STRATEGIES`` maps the ``strategy`` run-config key to the class; each class names the client
``protocol`` it needs (see :mod:`fedrobust.clients`).

>>> sorted(STRATEGIES)
['fedavg', 'mean-sgd']
>>> STRATEGIES["mean-sgd"].protocol, STRATEGIES["fedavg"].protocol
('gradient', 'local-steps')
"""

from .base import VectorStrategy, select_partitions
from .fedavg import FedAvg
from .gradient import GradientStrategy
from .mean_sgd import MeanSGD

STRATEGIES: dict[str, type[VectorStrategy]] = {cls.name: cls for cls in (MeanSGD, FedAvg)}

__all__ = ["STRATEGIES", "VectorStrategy", "GradientStrategy", "MeanSGD", "FedAvg", "select_partitions"]
