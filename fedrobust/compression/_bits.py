"""Bit-planes: boolean masks packed 8 per byte (``np.packbits``, big bit order) and their checks."""

from __future__ import annotations

import numpy as np
import torch

from .payload import PayloadError


def packed_length(n: int) -> int:
    """Bytes that hold ``n`` bits: ``ceil(n / 8)``.

    Examples
    --------
    >>> packed_length(8), packed_length(9), packed_length(0)
    (1, 2, 0)
    """
    return (n + 7) // 8


def pack(mask: torch.Tensor) -> np.ndarray:
    """Pack a boolean tensor (any device) into a uint8 array of ``ceil(n / 8)`` bytes; pad bits are 0.

    Examples
    --------
    >>> pack(torch.tensor([True, False, True]))
    array([160], dtype=uint8)
    """
    return np.packbits(mask.detach().to("cpu").numpy().astype(bool, copy=False))


def unpack(packed: np.ndarray, n: int, what: str, as_bool: bool = True) -> np.ndarray:
    """Unpack ``n`` bits from an untrusted uint8 array; check its length and that pad bits are 0.

    Returns booleans, or (``as_bool=False``) the 0/1 uint8 values without a conversion pass.

    Examples
    --------
    >>> unpack(np.array([160], np.uint8), 3, "plane")
    array([ True, False,  True])
    >>> unpack(np.array([161], np.uint8), 3, "plane")
    Traceback (most recent call last):
    ...
    fedrobust.compression.payload.PayloadError: plane: the 5 pad bit(s) after the last entry must be 0
    """
    if packed.shape[0] != packed_length(n):
        raise PayloadError(f"{what} must hold ceil({n}/8) = {packed_length(n)} bytes, got {packed.shape[0]}")
    rem = n % 8
    if rem and int(packed[-1]) & ((1 << (8 - rem)) - 1):
        raise PayloadError(f"{what}: the {8 - rem} pad bit(s) after the last entry must be 0")
    bits = np.unpackbits(packed, count=n)
    return bits.astype(bool) if as_bool else bits
