"""The attack library: how Byzantine workers corrupt their data or their messages.

The attacks are those used in the experiments of the papers fedrobust implements (BGMD,
norm-thresholding, C-RSA, FED-CURE); each attack's docstring names its source, and
docs/attacks.md lists them all.

Attacks are looked up by name in one registry (:data:`ATTACKS`, :func:`get_attack`); ``none`` (the
honest client) is the default. Every attack has a ``name``, a ``kind`` and its ``params``:

- ``update`` attacks rewrite the message a client sends, ``corrupt(message, generator)``:
  ``bit-flip`` (−scale·g), ``gaussian`` (g + N(0, variance)), ``gaussian-replace`` (N(0, std²)
  entries), ``sign-flip`` (−g), ``large-number`` (every entry = value), ``negative-update`` (−c·g), and ``malformed`` (replies the server must reject: NaN, ±Inf,
  1e38 entries, wrong array count, shape or dtype, undecodable payloads, non-numeric metrics;
  it also rewrites the encoded reply through ``corrupt_reply``);
- ``data`` attacks poison the client's local data once, ``poison(x, y, num_classes, rng)``:
  ``label-flip`` (uniform random labels), ``label-shift`` (y → C−1−y), ``backdoor`` (relabel to a
  target class, optionally with a pixel trigger), ``model-replacement`` (the backdoor, with the
  update trained on it scaled to replace the global model: a data attack whose ``corrupt`` hook also
  applies, see ``Attack.corrupts_messages``), ``dba`` (the backdoor's trigger split into parts, one
  per attacker), ``feature-gaussian`` (x + N(0, variance)),
  ``feature-impulse`` (salt-and-pepper on a fraction of the entries);
- ``omniscient`` attacks collude: the server-side adversary crafts the f Byzantine replies of a
  round from its honest ones, ``craft(honest, view)`` (:mod:`fedrobust.attacks.omniscient`):
  ``alie`` (μ − z·σ), ``ipm`` (−ε·μ), ``min-max`` and ``min-sum`` (μ + γ·p, γ as large as a
  distance bound allows), ``fang`` (beyond the honest extremes, against sign(μ)), ``mimic`` (a
  copy of one honest reply), and the adaptive ``optimal-alie`` and ``optimal-ipm`` (τ searched
  against the server's rule);
- ``none`` does nothing.

Every attack has both methods (the one its kind does not use returns a copy of its input), so a
Byzantine client calls both and needs no special case. Messages whose format is constrained
(e.g. the ternary signs of C-RSA, where a Byzantine worker can only send sign(C(x₀) − z) for an
arbitrary z) are projected back by the caller, e.g. ``torch.sign(attack.corrupt(msg, g))``.

Who is Byzantine: :func:`byzantine_ids` (``fixed`` or ``dynamic``, see
:mod:`fedrobust.attacks.selection`). Backdoor success: :func:`attack_success_rate`.

Examples
--------
Built-in attacks:

>>> import numpy as np
>>> import torch
>>> from fedrobust.attacks import get_attack
>>> get_attack("sign-flip").corrupt(torch.tensor([1.0, -2.0]))
tensor([-1.,  2.])
>>> a = get_attack("gaussian", variance=10)
>>> a.name, a.kind, a.params
('gaussian', 'update', {'variance': 10.0})
>>> get_attack("label-shift").poison(np.zeros((2, 3), np.float32), np.array([0, 3]), num_classes=10)[1]
array([9, 6])

A new update attack in a few lines: subclass :class:`UpdateAttack`, implement ``_corrupt``,
register it; parameters are constructor arguments kept as attributes of the same name.

>>> from fedrobust.attacks import ATTACKS, UpdateAttack, register_attack
>>> @register_attack("scaled-noise")
... class ScaledNoise(UpdateAttack):
...     '''Send g + level·‖g‖·z with z ~ N(0, I).'''
...     def __init__(self, level: float = 1.0):
...         self.level = float(level)
...     def _corrupt(self, message, generator):
...         z = torch.randn(message.shape, generator=generator)
...         return message + self.level * message.norm() * z
>>> attack = get_attack("scaled-noise", level=0.0)
>>> attack.corrupt(torch.tensor([3.0, 4.0]), torch.Generator().manual_seed(0))
tensor([3., 4.])
>>> attack.kind, attack.params
('update', {'level': 0.0})
>>> _ = ATTACKS.pop("scaled-noise")  # (doctest clean-up)

A data attack is the same with :class:`DataAttack` and ``_poison(x, y, num_classes, rng)``.
"""

from .backdoor import Backdoor
from .crafted import ALIE, IPM, Fang, Mimic, alie_z
from .dba import DBA
from .minmax import MinMax, MinSum
from .optimal import OptimalALIE, OptimalIPM
from .omniscient import AdversaryView, OmniscientAttack, honest_mean_std, repeat_row
from .base import KINDS, Attack, DataAttack, UpdateAttack, randn_like
from .data import FeatureGaussian, FeatureImpulse, LabelFlip, LabelShift
from .malformed import FAULTS, Malformed
from .metrics import attack_success_rate, model_predictor
from .none import NoAttack
from .registry import ATTACKS, get_attack, register_attack
from .replacement import ModelReplacement, replacement_boost
from .run import attack_summary, build_attack, byzantine_clients
from .selection import BYZANTINE_MODES, byzantine_ids, num_byzantine
from .update import BitFlip, Gaussian, GaussianReplace, LargeNumber, NegativeUpdate, SignFlip

__all__ = [
    "ATTACKS",
    "BYZANTINE_MODES",
    "KINDS",
    "Attack",
    "UpdateAttack",
    "DataAttack",
    "OmniscientAttack",
    "AdversaryView",
    "honest_mean_std",
    "repeat_row",
    "ALIE",
    "IPM",
    "MinMax",
    "MinSum",
    "Fang",
    "Mimic",
    "OptimalALIE",
    "OptimalIPM",
    "alie_z",
    "get_attack",
    "register_attack",
    "randn_like",
    "byzantine_ids",
    "num_byzantine",
    "attack_summary",
    "build_attack",
    "byzantine_clients",
    "attack_success_rate",
    "model_predictor",
    "NoAttack",
    "BitFlip",
    "Gaussian",
    "GaussianReplace",
    "SignFlip",
    "LargeNumber",
    "NegativeUpdate",
    "Malformed",
    "FAULTS",
    "LabelFlip",
    "LabelShift",
    "Backdoor",
    "ModelReplacement",
    "DBA",
    "replacement_boost",
    "FeatureGaussian",
    "FeatureImpulse",
]
