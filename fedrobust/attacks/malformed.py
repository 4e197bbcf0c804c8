"""The ``malformed`` attack: a Byzantine client that sends replies the server must reject.

Every fault of :data:`FAULTS` is one kind of untrusted input the shared validator
(:mod:`fedrobust.core.validation`) must catch without crashing the server:

=================  =====================================================================
fault              what the reply holds
=================  =====================================================================
``nan``            the message is all NaN (before encoding)
``inf``            the message is ±Inf, alternating (before encoding)
``huge``           the message is ±1e38, alternating (an absurd magnitude; before encoding)
``array-count``    one array too many (the last one repeated)
``shape``          the first array with an extra leading axis of length 1
``dtype``          every array cast to float64
``payload``        the last array one element short, integer arrays filled with their
                   dtype's maximum (bad packed lengths, out-of-range indices)
``metrics``        every metric replaced by a non-numeric string (e.g. the reported norm
                   of norm-thresholding option 1)
=================  =====================================================================

``fault = "cycle"`` (default) draws one fault per message from the attack's generator; a
Byzantine client seeds the two hooks alike (:func:`~fedrobust.clients.attack_generator`), so
:meth:`Malformed.corrupt` and :meth:`Malformed.corrupt_reply` agree on the fault. Value faults
act in :meth:`corrupt` (so a compressed protocol encodes them), wire faults in
:meth:`corrupt_reply` on the encoded arrays and metrics.

Examples
--------
>>> import numpy as np
>>> a = Malformed(fault="huge")
>>> a.corrupt(torch.tensor([1.0, 2.0, 3.0]))
tensor([ 1.0000e+38, -1.0000e+38,  1.0000e+38])
>>> arrays, metrics = Malformed(fault="dtype").corrupt_reply([np.zeros(2, np.float32)], {"grad_norm": 1.0})
>>> arrays[0].dtype, metrics
(dtype('float64'), {'grad_norm': 1.0})
>>> Malformed(fault="metrics").corrupt_reply([np.zeros(2, np.float32)], {"grad_norm": 1.0})[1]
{'grad_norm': 'not-a-number'}
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .base import UpdateAttack
from .registry import register_attack

__all__ = ["Malformed", "FAULTS", "VALUE_FAULTS", "WIRE_FAULTS"]

VALUE_FAULTS = ("nan", "inf", "huge")
"""Faults written into the flat message before the protocol encodes it."""
WIRE_FAULTS = ("array-count", "shape", "dtype", "payload", "metrics")
"""Faults written into the encoded reply (arrays and metrics)."""
FAULTS = VALUE_FAULTS + WIRE_FAULTS
"""Every fault of the ``malformed`` attack, in cycling order."""

HUGE = 1e38
"""The absurd magnitude of the ``huge`` fault (finite in float32, far above the validator's bound)."""


def _alternating(message: torch.Tensor, value: float) -> torch.Tensor:
    signs = torch.ones_like(message).reshape(-1)
    signs[1::2] = -1
    return (signs * value).reshape(message.shape)


@register_attack("malformed")
class Malformed(UpdateAttack):
    """Send a malformed reply (see the module docstring for the faults).

    Parameters
    ----------
    fault : str
        One of :data:`FAULTS`, or ``"cycle"`` (default): a fault drawn per message.

    Raises
    ------
    ValueError
        If ``fault`` is not one of :data:`FAULTS` or ``"cycle"``.
    """

    def __init__(self, fault: str = "cycle") -> None:
        if isinstance(fault, float) and not np.isfinite(fault):  # 'fault=nan' / 'fault=inf' parsed as floats
            fault = "nan" if np.isnan(fault) else "inf"
        if fault not in (*FAULTS, "cycle"):
            raise ValueError(f"fault must be one of {', '.join((*FAULTS, 'cycle'))}, got {fault!r}")
        self.fault = fault

    def choose(self, generator: torch.Generator | None) -> str:
        """The fault of one message: ``fault``, or for ``cycle`` one drawn from ``generator``."""
        if self.fault != "cycle":
            return self.fault
        return FAULTS[int(torch.randint(len(FAULTS), (1,), generator=generator))]

    def _corrupt(self, message: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        fault = self.choose(generator)
        if fault == "nan":
            return torch.full_like(message, float("nan"))
        if fault == "inf":
            return _alternating(message, float("inf"))
        if fault == "huge":
            return _alternating(message, HUGE)
        return message.clone()

    def corrupt_reply(
        self, arrays: list[np.ndarray], metrics: dict[str, Any], generator: torch.Generator | None = None
    ) -> tuple[list[np.ndarray], dict[str, Any]]:
        """The encoded reply with this message's wire fault (unchanged copies for a value fault)."""
        fault = self.choose(generator)
        arrays, metrics = [np.array(a, copy=True) for a in arrays], dict(metrics)
        if fault == "array-count" and arrays:
            arrays.append(arrays[-1].copy())
        elif fault == "shape" and arrays:
            arrays[0] = arrays[0][None]
        elif fault == "dtype":
            arrays = [a.astype(np.float64) for a in arrays]
        elif fault == "payload" and arrays:
            arrays = [np.full_like(a, np.iinfo(a.dtype).max) if a.dtype.kind in "iu" else a for a in arrays]
            arrays[-1] = arrays[-1].reshape(-1)[:-1]
        elif fault == "metrics":
            metrics = {k: "not-a-number" for k in metrics}
        return arrays, metrics
