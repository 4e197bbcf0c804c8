"""C-RSA and RSA: ℓ1-penalised model aggregation with ternary messages.

From He, Zhu and Ling (2023), "C-RSA: Byzantine-robust and communication-efficient distributed learning in the
non-convex and non-IID regime".

The master keeps x₀, each regular worker k its own model x_k (all start equal). Each round:

1. the master draws ω, l coordinates (:func:`draw_coordinates`: ``rand`` from a seed, or ``top``
   by |x₀|) and sends C(x₀) = x₀ on ω. On the wire this is exactly a ``rand-k`` payload
   (``get_compressor("rand-k", k=l).encode(x0, seed=seed)``: the seed plus l float32 values; the
   ``rand`` coordinates are the same as ``RandK(k=l).indices(d, seed)``) or a ``top-k`` payload
   (indices plus values);
2. worker k sends m_k = sign(C(x₀) − x_k) on ω (:func:`worker_message`), l ternary values packed as
   two bit-planes (:func:`pack_signs`), and steps x_k ← x_k − α[∇f(x_k) + λ·P_ω(sign(x_k − C(x₀)))]
   (:func:`worker_update`);
3. the master steps x₀ ← x₀ − α[∇f₀(x₀) + λ·Σ_k P_ω(m_k)] (:func:`master_update`), with f₀ a known
   regulariser (weight decay μ: pass ``grad0 = mu * x0``).

A Byzantine worker can only send sign(C(x₀) − z) for an arbitrary z: a ternary vector. So each
worker, honest or not, moves any coordinate of x₀ by at most αλ per round; that is the robustness.
RSA is C-RSA with ω = all coordinates (``omega=None`` everywhere).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from ..core.checks import check_int, check_seed
from ..aggregators._chunks import column_blocks
from ..compression import RandK, Sign
from ._checks import check_nonnegative, check_positive, check_vector

__all__ = [
    "METHODS",
    "draw_coordinates",
    "worker_message",
    "worker_update",
    "master_update",
    "pack_signs",
    "unpack_signs",
]

METHODS = ("rand", "top")
"""How :func:`draw_coordinates` picks ω: ``rand`` (l uniform coordinates from a seed) or ``top`` (l largest |x₀|)."""

_SIGN = Sign()


def draw_coordinates(
    d: int, l: int, seed: int | None = None, method: str = "rand", x0: torch.Tensor | None = None
) -> torch.Tensor:
    """The coordinate set ω of one C-RSA round: l distinct indices in [0, d), sorted ascending.

    Parameters
    ----------
    d : int
        Model dimension.
    l : int
        Number of coordinates, 1 <= l <= d (l = d/2 in He et al., 2023).
    seed : int, optional
        ``rand``: the seed (>= 0) that workers also receive; the indices are those of
        ``RandK(k=l).indices(d, seed)``, so a ``rand-k`` payload carries ω. Required for ``rand``.
    method : str
        ``"rand"`` or ``"top"`` (see :data:`METHODS`).
    x0 : torch.Tensor, optional
        ``top``: the master's model; ω = the l largest |x₀| entries (ties as ``torch.topk``).

    Returns
    -------
    torch.Tensor
        int64 indices, shape (l,), on CPU for ``rand`` and on ``x0``'s device for ``top``.

    Examples
    --------
    >>> draw_coordinates(10, 3, seed=5).tolist() == draw_coordinates(10, 3, seed=5).tolist()
    True
    >>> draw_coordinates(4, 2, method="top", x0=torch.tensor([0.1, -5.0, 2.0, 0.3])).tolist()
    [1, 2]
    """
    d = check_int(d, "d", low=1)
    l = check_int(l, "l", low=1, high=d)
    if method == "rand":
        if seed is None:
            raise ValueError("seed is required for method='rand' (workers regenerate omega from it)")
        return RandK(k=l).indices(d, check_seed(seed))
    if method == "top":
        if x0 is None:
            raise ValueError("x0 is required for method='top' (omega = the l largest |x0|)")
        x0 = check_vector(x0, "x0", d=d)
        return torch.sort(torch.topk(x0.detach().abs(), l, sorted=False).indices).values
    raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")


def _check_omega(omega: torch.Tensor | None, d: int, l: int, device: torch.device) -> torch.Tensor | None:
    """Raise unless ``omega`` is None (all coordinates, then l must equal d) or l sorted distinct indices in [0, d)."""
    if omega is None:
        if l != d:
            raise ValueError(f"omega=None means all {d} coordinates (RSA), but the values on omega have length {l}")
        return None
    if not isinstance(omega, torch.Tensor) or omega.dim() != 1 or omega.dtype != torch.int64:
        raise TypeError("omega must be a 1-D int64 tensor of coordinates (see draw_coordinates)")
    if omega.numel() != l:
        raise ValueError(f"omega must have {l} entries (the length of the values on omega), got {omega.numel()}")
    if l and (int(omega[0]) < 0 or int(omega[-1]) >= d or not bool((omega[1:] > omega[:-1]).all())):
        raise ValueError(f"omega must be strictly increasing indices in [0, {d - 1}] (see draw_coordinates)")
    return omega.to(device)


def worker_message(x0_on_omega: torch.Tensor, xk_on_omega: torch.Tensor) -> torch.Tensor:
    """A worker's upload: sign(C(x₀) − x_k) on ω, as int8 values in {−1, 0, 1}.

    A Byzantine worker sends the same with an arbitrary vector z in place of x_k.

    Parameters
    ----------
    x0_on_omega : torch.Tensor
        The master's values on ω (what the worker received), shape (l,).
    xk_on_omega : torch.Tensor
        The worker's own model on ω, ``xk[omega]``, shape (l,).

    Returns
    -------
    torch.Tensor
        int8, shape (l,), on ``x0_on_omega``'s device.

    Examples
    --------
    >>> worker_message(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.0, 2.0, 9.0]))
    tensor([ 1,  0, -1], dtype=torch.int8)
    """
    x0_on_omega = check_vector(x0_on_omega, "x0_on_omega")
    xk_on_omega = check_vector(xk_on_omega, "xk_on_omega", d=x0_on_omega.numel())
    return torch.sign(x0_on_omega - xk_on_omega.to(x0_on_omega)).to(torch.int8)


def worker_update(
    xk: torch.Tensor,
    grad: torch.Tensor,
    x0_on_omega: torch.Tensor,
    omega: torch.Tensor | None,
    alpha: float,
    lam: float,
) -> torch.Tensor:
    """A regular worker's step: x_k ← x_k − α[∇f(x_k) + λ·P_ω(sign(x_k − C(x₀)))].

    Parameters
    ----------
    xk : torch.Tensor
        The worker's model, shape (d,).
    grad : torch.Tensor
        Its (stochastic) gradient at ``xk``, shape (d,).
    x0_on_omega : torch.Tensor
        The master's values on ω, shape (l,).
    omega : torch.Tensor or None
        The coordinates ω (int64, sorted, distinct); None for RSA (all coordinates, l = d).
    alpha : float
        Step size α > 0.
    lam : float
        ℓ1 penalty λ >= 0.

    Returns
    -------
    torch.Tensor
        The new x_k, in ``xk``'s dtype and device.

    Examples
    --------
    >>> worker_update(torch.tensor([1.0, 1.0, 1.0]), torch.zeros(3), torch.tensor([5.0, 0.0]),
    ...               torch.tensor([0, 2]), alpha=0.1, lam=2.0)
    tensor([1.2000, 1.0000, 0.8000])
    """
    xk = check_vector(xk, "xk")
    grad = check_vector(grad, "grad", d=xk.numel())
    x0_on_omega = check_vector(x0_on_omega, "x0_on_omega")
    alpha = check_positive(alpha, "alpha")
    lam = check_nonnegative(lam, "lam")
    omega = _check_omega(omega, xk.numel(), x0_on_omega.numel(), xk.device)
    x0_on = x0_on_omega.to(xk)
    new = xk - alpha * grad.to(xk)
    if omega is None:
        return new.sub_(torch.sign(xk - x0_on).mul_(alpha * lam))
    return new.index_add_(0, omega, xk[omega].sub_(x0_on).sign_(), alpha=-(alpha * lam))


def master_update(
    x0: torch.Tensor,
    grad0: torch.Tensor | None,
    received_signs: torch.Tensor,
    omega: torch.Tensor | None,
    alpha: float,
    lam: float,
) -> torch.Tensor:
    """The master's step: x₀ ← x₀ − α[∇f₀(x₀) + λ·Σ_k P_ω(m_k)].

    Each row m_k is ternary, so each worker moves any coordinate of x₀ by at most αλ per round,
    whatever it sends; the regulariser's term −α∇f₀ is the master's own.

    Parameters
    ----------
    x0 : torch.Tensor
        The master's model, shape (d,).
    grad0 : torch.Tensor or None
        ∇f₀(x₀), shape (d,): ``mu * x0`` for weight decay μ (He et al., 2023: 0.01); None for f₀ = 0.
    received_signs : torch.Tensor
        The workers' messages, shape (n, l), values in {−1, 0, 1} (any integer or floating dtype,
        e.g. int8 from :func:`unpack_signs`).
    omega : torch.Tensor or None
        The round's coordinates; None for RSA (l = d).
    alpha : float
        Step size α > 0.
    lam : float
        ℓ1 penalty λ >= 0.

    Returns
    -------
    torch.Tensor
        The new x₀, in ``x0``'s dtype and device.

    Raises
    ------
    ValueError
        If a received value is not in {−1, 0, 1} (the bound above relies on it).

    Examples
    --------
    >>> signs = torch.tensor([[1, -1], [1, 0], [1, 1]], dtype=torch.int8)
    >>> master_update(torch.zeros(3), None, signs, torch.tensor([0, 2]), alpha=0.1, lam=1.0)
    tensor([-0.3000,  0.0000,  0.0000])
    """
    x0 = check_vector(x0, "x0")
    alpha = check_positive(alpha, "alpha")
    lam = check_nonnegative(lam, "lam")
    if not isinstance(received_signs, torch.Tensor) or received_signs.dim() != 2 or received_signs.shape[0] < 1:
        raise ValueError("received_signs must be a tensor of shape (n, l) with n >= 1 (one row per worker)")
    if received_signs.dtype == torch.bool or received_signs.is_complex():
        raise TypeError(f"received_signs must hold -1/0/1 as an integer or floating dtype, got {received_signs.dtype}")
    omega = _check_omega(omega, x0.numel(), received_signs.shape[1], x0.device)
    signs = received_signs.to(device=x0.device)
    # column blocks: no (n, l) masks on the server (see docs/performance.md)
    if not all(bool(((b == 1) | (b == 0) | (b == -1)).all()) for _, b in column_blocks(signs)):
        raise ValueError("received_signs must hold only -1, 0 or 1 (ternary messages)")
    total = signs.to(x0.dtype).sum(dim=0)
    new = x0.clone() if grad0 is None else x0 - alpha * check_vector(grad0, "grad0", d=x0.numel()).to(x0)
    if omega is None:
        return new - (alpha * lam) * total
    return new.index_add_(0, omega, total, alpha=-(alpha * lam))


def pack_signs(signs: torch.Tensor) -> dict[str, np.ndarray]:
    """The compact wire form of a ternary message: the ``sign`` compressor's two bit-planes.

    ``negative`` (1 where the value is −1) is always sent, ceil(l/8) bytes; ``zero`` (1 where it is
    0) only when the message has a zero, else it is empty. So l ternary values take ceil(l/8)
    bytes, or 2·ceil(l/8) when some are 0.

    Examples
    --------
    >>> from fedrobust.compression import payload_nbytes
    >>> payload = pack_signs(torch.tensor([1, -1, 0, 1, 1, 1, 1, 1, -1], dtype=torch.int8))
    >>> payload_nbytes(payload)
    4
    >>> unpack_signs(payload, 9).tolist()
    [1, -1, 0, 1, 1, 1, 1, 1, -1]
    """
    if not isinstance(signs, torch.Tensor) or signs.dim() != 1 or signs.numel() < 1:
        raise ValueError("signs must be a non-empty 1-D tensor of -1/0/1 values")
    if not bool(((signs == 1) | (signs == 0) | (signs == -1)).all()):
        raise ValueError("signs must hold only -1, 0 or 1 (ternary messages)")
    return _SIGN.encode(signs.to(torch.float32))


def pack_signs_of(vec: torch.Tensor) -> dict[str, np.ndarray]:
    """:func:`pack_signs` of sign(``vec``) for a float vector, NaN counting as 0, in one pass: the
    sign compressor's bit-planes of ``vec`` are those of its signs, so no ternary tensor is made.

    Examples
    --------
    >>> v = torch.tensor([0.5, -2.0, 0.0, float("nan"), 3.0])
    >>> all((pack_signs_of(v)[k] == pack_signs(torch.tensor([1, -1, 0, 0, 1], dtype=torch.int8))[k]).all()
    ...     for k in ("negative", "zero"))
    True
    """
    return _SIGN.encode(torch.nan_to_num(vec.detach(), nan=0.0))


def unpack_signs(payload: Mapping[str, np.ndarray], l: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Decode an untrusted :func:`pack_signs` payload of ``l`` values into int8 {−1, 0, 1}.

    Raises :class:`~fedrobust.compression.PayloadError` if the payload is malformed.
    """
    return _SIGN.decode(payload, l, device=device).to(torch.int8)
