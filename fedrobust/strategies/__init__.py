"""Flower strategies (server logic) for robust federated learning.

Each strategy is a thin class over the pure functions of :mod:`fedrobust.aggregators` and
:mod:`fedrobust.compression`; the shared server loop is :class:`~fedrobust.strategies.base.VectorStrategy`.
``STRATEGIES`` maps the ``strategy`` run-config key to the class; each class names the client
``protocol`` it needs (see :mod:`fedrobust.clients`).

>>> sorted(STRATEGIES)  # doctest: +NORMALIZE_WHITESPACE
['bgmd', 'c-rsa', 'cmd', 'fed-cure', 'fedavg', 'fl-bgmd', 'gmd', 'krum', 'mean-sgd', 'norm-threshold',
 'norm-threshold-ef', 'qbgmd', 'rsa', 'signsgd-mv', 'trimmed-mean']
>>> STRATEGIES["mean-sgd"].protocol, STRATEGIES["fedavg"].protocol
('gradient', 'local-steps')
"""

from .base import VectorStrategy, select_partitions
from .bgmd import BGMD, BlockGMStrategy
from .c_rsa import CRSA, RSA
from .cmd import CMD
from .fed_cure import FedCure
from .fedavg import FedAvg
from .fl_bgmd import FLBGMD
from .gmd import GMD
from .gradient import GradientStrategy
from .krum import Krum
from .mean_sgd import MeanSGD
from .norm_threshold import NormThreshold, NormThresholdEF
from .qbgmd import QBGMD
from .signsgd import SignSGDMV
from .trimmed_mean import TrimmedMean

STRATEGIES: dict[str, type[VectorStrategy]] = {
    cls.name: cls
    for cls in (
        MeanSGD, FedAvg, BGMD, GMD, CMD, TrimmedMean, Krum, QBGMD, FLBGMD,
        NormThreshold, NormThresholdEF, CRSA, RSA, FedCure, SignSGDMV,
    )
}

__all__ = [
    "STRATEGIES",
    "VectorStrategy",
    "GradientStrategy",
    "BlockGMStrategy",
    "MeanSGD",
    "FedAvg",
    "BGMD",
    "GMD",
    "CMD",
    "TrimmedMean",
    "Krum",
    "QBGMD",
    "FLBGMD",
    "NormThreshold",
    "NormThresholdEF",
    "CRSA",
    "RSA",
    "FedCure",
    "SignSGDMV",
    "select_partitions",
]
