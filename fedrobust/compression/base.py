"""The :class:`Compressor` interface: encode to a compact payload, decode back to a dense vector."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch

from ..core.checks import all_finite
from ._checks import check_d, check_seed, check_vector
from .payload import PayloadError, check_payload

__all__ = ["Compressor"]


class Compressor(abc.ABC):
    """Base class of all compressors.

    A compressor maps a flat vector x to Q(x). :meth:`encode` writes Q(x) as a compact payload (an
    ordered ``dict[str, np.ndarray]`` whose keys and dtypes are ``dtypes``), :meth:`decode` turns an
    untrusted payload back into the dense float32 Q(x), and :meth:`compress` is exactly
    ``decode(encode(x))``.

    Subclasses set ``dtypes`` (class or instance attribute), ``unbiased`` and ``randomized``, and
    implement ``_encode``, ``_decode`` and ``_delta``; register them with
    :func:`~fedrobust.compression.register_compressor`, which also sets ``name``.

    Attributes
    ----------
    name : str
        The registry name (e.g. ``"top-k"``).
    dtypes : Mapping[str, numpy.dtype]
        Payload key -> dtype, in the fixed key order of the payload.
    unbiased : bool
        Whether E[Q(x)] = x.
    randomized : bool
        Whether ``encode`` draws random numbers (then ``seed`` / ``generator`` matter).
    finite_by_construction : bool
        Whether ``_decode`` can only return finite values once it has checked the payload's scalars
        (e.g. ±scale with a finite scale); :meth:`decode` then skips its own pass over the output.
    """

    name: ClassVar[str] = ""
    dtypes: Mapping[str, Any] = {}
    unbiased: bool = False
    randomized: bool = False
    finite_by_construction: bool = False

    @property
    def keys(self) -> tuple[str, ...]:
        """Payload keys in their fixed order."""
        return tuple(self.dtypes)

    @property
    def params(self) -> dict[str, Any]:
        """Constructor parameters (for logs and ``repr``)."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"

    def encode(
        self, x: torch.Tensor, *, seed: int | None = None, generator: torch.Generator | None = None
    ) -> dict[str, np.ndarray]:
        """Compress ``x`` into its payload.

        Parameters
        ----------
        x : torch.Tensor
            Flat, finite, floating-point vector of length d >= 1, on any device.
        seed : int, optional
            Seed in [0, 2**64 - 1] of a CPU ``torch.Generator`` for the random draws.
        generator : torch.Generator, optional
            Generator to draw from instead (give ``seed`` or ``generator``, not both). With neither,
            random compressors draw from torch's default generator (``torch.manual_seed`` applies).
            Deterministic compressors ignore both.

        Returns
        -------
        dict[str, numpy.ndarray]
            The payload, keys in the order of ``keys``.
        """
        x = check_vector(x)
        check_seed(seed, generator)
        payload = self._encode(x, seed=seed, generator=generator)
        if not isinstance(payload, dict) or list(payload) != list(self.keys):
            got = list(payload) if isinstance(payload, Mapping) else type(payload).__name__
            raise TypeError(f"{type(self).__name__}._encode must return a dict with keys {list(self.keys)}, got {got}")
        return payload

    def decode(self, payload: Mapping[str, np.ndarray], d: int, device: torch.device | str | None = None) -> torch.Tensor:
        """Rebuild the dense Q(x) from an untrusted payload.

        Parameters
        ----------
        payload : dict[str, numpy.ndarray]
            What :meth:`encode` produced (possibly from a faulty or malicious sender).
        d : int
            The vector length the receiver expects.
        device : torch.device or str, optional
            Where to put the result (default CPU).

        Returns
        -------
        torch.Tensor
            Dense float32 tensor of shape (d,), finite.

        Raises
        ------
        PayloadError
            If the payload is malformed for this compressor and ``d``, or would decode to NaN/Inf.
        """
        d = check_d(d)
        device = torch.device("cpu" if device is None else device)
        fields = check_payload(payload, self.dtypes, name=f"{self.name or type(self).__name__} payload")
        y = self._decode(fields, d, device)
        if y.shape != (d,) or y.dtype != torch.float32:
            raise TypeError(f"{type(self).__name__}._decode must return float32 of shape ({d},), got {y.dtype} {tuple(y.shape)}")
        if not self.finite_by_construction and not all_finite(y):
            raise PayloadError(f"{self.name or type(self).__name__} payload decodes to non-finite values")
        return y

    def compress(
        self, x: torch.Tensor, *, seed: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Q(x) as a dense float32 tensor on ``x``'s device: exactly ``decode(encode(x))``."""
        payload = self.encode(x, seed=seed, generator=generator)
        return self.decode(payload, x.numel(), device=x.device)

    def delta(self, d: int) -> float:
        """The documented δ with ‖Q(x) − x‖² ≤ (1 − δ)‖x‖² for all x in R^d (in expectation if random).

        δ = 1 means exact; δ <= 0 means no contraction (the bound still holds as stated); ``-inf``
        means no such bound exists.
        """
        return float(self._delta(check_d(d)))

    @abc.abstractmethod
    def _encode(self, x: torch.Tensor, *, seed: int | None, generator: torch.Generator | None) -> dict[str, np.ndarray]:
        """Encode a checked vector (1-D, finite, floating, detached)."""

    @abc.abstractmethod
    def _decode(self, fields: dict[str, np.ndarray], d: int, device: torch.device) -> torch.Tensor:
        """Decode arrays whose keys, dtypes and 1-D shapes are already checked."""

    @abc.abstractmethod
    def _delta(self, d: int) -> float:
        """δ for vectors of length ``d`` (already checked)."""


def to_tensor(arr: np.ndarray, device: torch.device) -> torch.Tensor:
    """Copy a (possibly read-only) numpy array into a tensor on ``device``."""
    return torch.from_numpy(np.array(arr, copy=True)).to(device)
