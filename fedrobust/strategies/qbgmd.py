"""QBGMD: BGMD whose clients send a compressed gradient Q(g).

From Acharya (2021), "Robust and Efficient Collaborative Optimization for Deep Learning" (seminar slides),
Lemma 4: block selection after a quantiser is still a contraction, so BGMD's guarantees carry over.

The server decodes each payload (:mod:`fedrobust.strategies.compressed`; malformed ones are
rejected) and runs BGMD's step on the decoded gradients: ``P = lr · Q(g_i) + m``, block GM,
``x ← x − g~``. Keys: those of ``bgmd`` plus ``compressor`` and ``compressor-params``; ``bytes_up``
is the real payload size.
"""

from __future__ import annotations

from typing import ClassVar

from .bgmd import BGMD
from .compressed import CompressedStrategy

__all__ = ["QBGMD"]


class QBGMD(CompressedStrategy, BGMD):
    """BGMD on the ``compressed-gradient`` protocol."""

    name: ClassVar[str] = "qbgmd"
    protocol: ClassVar[str] = "compressed-gradient"
