"""Robust drop-in replacements of Flower's FedAvg for ordinary Flower apps (the weights protocol).

An ordinary Flower client trains the global model and replies with its new weights. The plugin
strategies subclass Flower's own ``FedAvg``, so every usual constructor argument and the sampling,
configuration and evaluation keep working, and replace only the weighted mean of the replies by
a robust rule of the clients' deltas (new weights minus the global model), after validating
every reply (:mod:`fedrobust.plugin.weights`). A Flower app changes its strategy import and
class name:

- legacy API (``flwr.server.strategy.FedAvg``): ``from fedrobust.plugin.legacy import FedBGMD``;
- Message API (``flwr.serverapp.strategy.FedAvg``): ``from fedrobust.plugin.message import FedBGMD``.

Both modules hold the same classes (``PLUGINS`` maps the names to them):

- ``FedGMD`` (``gmd``): geometric median of the deltas;
- ``FedBGMD`` (``bgmd``): block geometric median with residual memory;
- ``FedCMD`` (``cmd``): coordinate-wise median;
- ``FedTrimmedMean`` (``trimmed-mean``): coordinate-wise trimmed mean;
- ``FedKrum`` (``krum``): Krum / multi-Krum;
- ``FedNormThreshold`` (``norm-threshold``): mean after dropping the largest-norm deltas;
- ``FedFLTrust`` (``fltrust``): deltas weighted by their cosine with the server's own update on its
  root data, each rescaled to its norm (needs ``server_update_fn``).

The classes are made from the rule table :data:`fedrobust.aggregators.rules.RULES` (the same rule
objects fedrobust's own strategies use); a rule registered with
:func:`~fedrobust.aggregators.rules.register_rule` becomes a class in both modules. The names are
those of :data:`fedrobust.strategies.STRATEGIES`.

To evaluate any Flower strategy (of either API) under an omniscient attack, wrap it:
``Attacked(FedAvg(), attack="alie", byzantine=0.2)`` (:mod:`fedrobust.plugin.attacked`) crafts the
Byzantine nodes' replies before the wrapped strategy aggregates.

These are not fedrobust's own strategies (:mod:`fedrobust.strategies`), which need fedrobust's
clients and their protocols (gradients, compressed payloads, ...); see docs/plugin.md.
"""

from ..aggregators.rules import RULES, Rule, RuleStep, register_rule, rule_parameters
from .attacked import Attacked
from .weights import WeightsAggregator, WeightsResult

__all__ = [
    "Attacked", "RULES", "Rule", "RuleStep", "WeightsAggregator", "WeightsResult", "register_rule", "rule_parameters",
]
