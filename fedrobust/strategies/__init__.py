"""Flower strategies (server logic) for robust federated learning.

Each strategy is a thin class over the pure functions of :mod:`fedrobust.aggregators` and
:mod:`fedrobust.compression`; the shared server loop is :class:`~fedrobust.strategies.base.VectorStrategy`.
``STRATEGIES`` maps the ``strategy`` run-config key to the class; each class names the client
``protocol`` it needs (see :mod:`fedrobust.clients`). Every aggregation rule of
:data:`fedrobust.aggregators.rules.RULES` without a strategy of its own is a gradient-protocol
strategy (:func:`~fedrobust.strategies.rule.gradient_strategy`), so a rule registered with
:func:`~fedrobust.aggregators.rules.register_rule` is a ``strategy`` value at once;
:func:`register_strategy` adds a strategy class of any protocol.

>>> sorted(STRATEGIES)  # doctest: +NORMALIZE_WHITESPACE
['bgmd', 'bulyan', 'c-rsa', 'caf', 'centered-clipping', 'clipped-clustering', 'cmd', 'dnc', 'fed-cure', 'fedavg',
 'fl-bgmd', 'fltrust', 'gmd', 'krum', 'mda', 'meamed', 'mean-sgd', 'monna', 'norm-threshold', 'norm-threshold-ef',
 'qbgmd', 'rsa', 'signguard', 'signsgd-mv', 'smea', 'trimmed-mean']
>>> STRATEGIES["mean-sgd"].protocol, STRATEGIES["fedavg"].protocol
('gradient', 'local-steps')
"""

from collections.abc import Iterator, Mapping

from ..aggregators.rules import RULES
from .base import VectorStrategy, select_partitions
from .bgmd import BGMD, BlockGMStrategy
from .c_rsa import CRSA, RSA
from .cmd import CMD
from .fed_cure import FedCure
from .fedavg import FedAvg
from .fl_bgmd import FLBGMD
from .fltrust import FLTrust
from .gmd import GMD
from .gradient import GradientStrategy
from .krum import Krum
from .mean_sgd import MeanSGD
from .norm_threshold import NormThreshold, NormThresholdEF
from .qbgmd import QBGMD
from .rule import RuleStrategy, gradient_strategy
from .signsgd import SignSGDMV
from .trimmed_mean import TrimmedMean

_BUILT_IN: dict[str, type[VectorStrategy]] = {
    cls.name: cls
    for cls in (
        MeanSGD, FedAvg, BGMD, GMD, CMD, TrimmedMean, Krum, QBGMD, FLBGMD,
        NormThreshold, NormThresholdEF, CRSA, RSA, FedCure, SignSGDMV, FLTrust,
    )
}


class _StrategyTable(Mapping):
    """Built-in and registered strategies, plus a gradient strategy for every other rule of ``RULES``."""

    def __init__(self, built_in: dict[str, type[VectorStrategy]]) -> None:
        self._classes = dict(built_in)
        self._generated: dict[str, type[VectorStrategy]] = {}

    def _all(self) -> dict[str, type[VectorStrategy]]:
        table = dict(self._classes)
        for name, rule_class in RULES.items():
            if name in table:
                continue
            cls = self._generated.get(name)
            if cls is None or cls.rule_class is not rule_class:
                cls = self._generated[name] = gradient_strategy(rule_class)
            table[name] = cls
        return table

    def __getitem__(self, name: str) -> type[VectorStrategy]:
        return self._all()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def register(self, cls: type[VectorStrategy]) -> type[VectorStrategy]:
        if not (isinstance(cls, type) and issubclass(cls, VectorStrategy)) or not getattr(cls, "name", ""):
            raise TypeError(f"register_strategy takes a named VectorStrategy subclass, got {cls!r}")
        if self._classes.get(cls.name, cls) is not cls:
            raise ValueError(f"a strategy named {cls.name!r} is already registered ({self._classes[cls.name].__name__})")
        self._classes[cls.name] = cls
        return cls


STRATEGIES: Mapping[str, type[VectorStrategy]] = _StrategyTable(_BUILT_IN)
"""Strategy name → class (see the module docstring)."""


def register_strategy(cls: type[VectorStrategy]) -> type[VectorStrategy]:
    """Class decorator: make a :class:`VectorStrategy` subclass a ``strategy`` value under its ``name``.

    Raises
    ------
    ValueError
        If another strategy class has the name.
    """
    return STRATEGIES.register(cls)  # type: ignore[attr-defined]


__all__ = [
    "STRATEGIES",
    "register_strategy",
    "RuleStrategy",
    "gradient_strategy",
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
    "FLTrust",
    "NormThreshold",
    "NormThresholdEF",
    "CRSA",
    "RSA",
    "FedCure",
    "SignSGDMV",
    "select_partitions",
]
