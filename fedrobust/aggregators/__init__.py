"""Robust aggregation: pure, vectorised torch functions over an (n, d) tensor of client vectors.

Every function takes rows = clients, columns = coordinates, runs unchanged on CPU or CUDA, checks its
arguments and returns results on the input's device. Inputs are assumed finite: client messages are
validated before they reach an aggregator.

========================= ==================================================================
``mean``                  (weighted) mean, the non-robust baseline
``coordinate_median``     coordinate-wise median
``trimmed_mean``          coordinate-wise trimmed mean, ``beta`` trimmed from each side
``krum``                  Krum / multi-Krum (``krum_scores``, ``krum_select``)
``geometric_median``      smoothed Weiszfeld with Vardi-Zhang steps; breakdown point 1/2
``norm_trim``             indices of the smallest-norm rows (norm thresholding)
``sign_majority``         signSGD majority vote
``block_select``          BGMD's block coordinate selection (``column_scores``, ``relative_residual``)
``block_geometric_median`` BGMD / FL-BGMD server step: select a block, GM there, keep the residual
========================= ==================================================================

:mod:`fedrobust.aggregators.rules` wraps them as rule objects (``RULES``, ``register_rule``), the
one definition of each rule that fedrobust's strategies and the plugin strategies share.
"""

from .bgmd import MEMORIES, MEMORY_WEIGHTS, BlockGMStep, block_geometric_median
from .block import SELECTIONS, BlockSelection, block_select, column_scores, relative_residual
from .coordinate import coordinate_median, trimmed_mean
from .geometric_median import GeometricMedian, geometric_median, weiszfeld_weights
from .krum import krum, krum_scores, krum_select
from .mean import mean
from .norm_trim import norm_trim
from .sign import sign_majority
from .rules import RULES, Rule, RuleStep, register_rule  # noqa: E402 - after the functions they use

__all__ = [
    "MEMORIES",
    "MEMORY_WEIGHTS",
    "BlockGMStep",
    "block_geometric_median",
    "SELECTIONS",
    "BlockSelection",
    "GeometricMedian",
    "block_select",
    "column_scores",
    "coordinate_median",
    "geometric_median",
    "krum",
    "krum_scores",
    "krum_select",
    "mean",
    "norm_trim",
    "relative_residual",
    "sign_majority",
    "trimmed_mean",
    "weiszfeld_weights",
    "RULES",
    "Rule",
    "RuleStep",
    "register_rule",
]
