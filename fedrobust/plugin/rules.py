"""The plugin strategies' rules: :mod:`fedrobust.aggregators.rules`, kept importable here.

The rules moved to :mod:`fedrobust.aggregators.rules`, where fedrobust's own strategies use the
same objects; this module re-exports them for code that imports ``fedrobust.plugin.rules``.
"""

from ..aggregators.rules import (  # noqa: F401 - re-exports
    RULES,
    BGMDRule,
    CMDRule,
    GMDRule,
    KrumRule,
    NormThresholdRule,
    Rule,
    RuleStep,
    TrimmedMeanRule,
    register_rule,
    rule_parameters,
)

__all__ = [
    "RULES", "Rule", "RuleStep", "GMDRule", "BGMDRule", "CMDRule", "TrimmedMeanRule", "KrumRule",
    "NormThresholdRule", "register_rule", "rule_parameters",
]
