"""Rules registered by this module (see :mod:`fedrobust.aggregators.rules`)."""

from __future__ import annotations
