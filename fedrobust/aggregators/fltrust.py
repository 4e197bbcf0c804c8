"""FLTrust: client updates weighted by their agreement with the server's own update.

From Cao, Fang, Liu and Gong (2021), "FLTrust: Byzantine-robust Federated Learning via Trust
Bootstrapping" (NDSS). The server holds a small clean root dataset and computes its own update
``g0`` at the current model each round. Every client update ``g_i`` gets the trust score
``TS_i = ReLU(cos(g_i, g0))``, is rescaled to the server update's norm, and the aggregate is

    ``sum_i TS_i · (||g0|| / ||g_i||) · g_i  /  sum_i TS_i``.

An update pointing away from ``g0`` (cosine <= 0) gets no weight, and no update can weigh more than
its direction: every rescaled update has the norm ``||g0||``, so the aggregate's norm is at most
``||g0||`` whatever the clients send.

**Scale safety.** Norms come from :func:`~fedrobust.aggregators._gram.row_norms` (float64, finite
for any finite row); the cosines are inner products of the *unit* rows and the unit reference,
formed in float64 column block by column block, so no product or sum can overflow; the combination
has coefficients ``||g0|| TS_i / (sum TS · ||g_i||)`` and goes through
:func:`~fedrobust.aggregators._gram.combine` (float64 where float32 would round or overflow). A
zero row has cosine 0 (no trust), and a zero reference gives every row cosine 0.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ..core.checks import all_finite, check_matrix, check_vector
from ._chunks import BLOCK_ELEMENTS, column_blocks
from ._gram import combine, row_norms

__all__ = ["FLTrustResult", "fltrust", "trust_scores"]


class FLTrustResult(NamedTuple):
    """What :func:`fltrust` returns."""

    aggregate: torch.Tensor
    """Shape (d,), in the rows' dtype and device; zero when no row is trusted."""
    trust: torch.Tensor
    """The trust scores ``TS_i = max(0, cos(g_i, g0))``, float64, shape (n,)."""


def trust_scores(
    x: torch.Tensor, reference: torch.Tensor, norms: torch.Tensor | None = None, block_elements: int = BLOCK_ELEMENTS
) -> torch.Tensor:
    """``max(0, cos(x_i, reference))`` for every row, float64, overflow-free (see the module docstring).

    A zero row, or a zero ``reference``, has cosine 0. ``norms`` are the rows' norms when already
    known (float64, shape (n,)).

    Examples
    --------
    >>> x = torch.tensor([[1.0, 0.0], [1.0, 1.0], [-1.0, 0.0], [0.0, 0.0], [3e38, 3e38]])
    >>> [round(v, 4) for v in trust_scores(x, torch.tensor([2.0, 0.0])).tolist()]
    [1.0, 0.7071, 0.0, 0.0, 0.7071]
    """
    check_matrix(x)
    check_vector(reference, "reference", d=x.shape[1])
    if norms is None:
        norms = row_norms(x, block_elements)
    ref = reference.reshape(1, -1)
    ref_norm = float(row_norms(ref, block_elements)[0])
    n = x.shape[0]
    if ref_norm == 0.0:
        return torch.zeros(n, dtype=torch.float64, device=x.device)
    # 1 / ||x_i|| for the nonzero rows; a zero row's unit vector is taken as 0 (cosine 0).
    inverse = torch.where(norms > 0, 1.0 / norms.clamp(min=torch.finfo(torch.float64).tiny), torch.zeros_like(norms))
    cosines = torch.zeros(n, dtype=torch.float64, device=x.device)
    for start, block in column_blocks(x, block_elements):
        unit = block.to(torch.float64) * inverse[:, None]  # entries of unit rows: |.| <= 1
        unit_ref = ref[0, start : start + block.shape[1]].to(device=x.device, dtype=torch.float64) / ref_norm
        cosines += unit @ unit_ref
    return cosines.clamp_(min=0.0, max=1.0)


def fltrust(x: torch.Tensor, reference: torch.Tensor, block_elements: int = BLOCK_ELEMENTS) -> FLTrustResult:
    """FLTrust's aggregate of the rows of ``x`` given the server's own update ``reference``.

    Cao, Fang, Liu and Gong (2021), "FLTrust: Byzantine-robust Federated Learning via Trust
    Bootstrapping": with ``TS_i = max(0, cos(x_i, g0))`` and ``g0 = reference``, the aggregate is
    ``sum_i TS_i · (||g0|| / ||x_i||) · x_i / sum_i TS_i``, or zero (the model stays where it is)
    when every ``TS_i`` is 0. Scale-safe for any finite rows (see the module docstring).

    Parameters
    ----------
    x : torch.Tensor
        Client updates, shape (n, d), floating point.
    reference : torch.Tensor
        The server's update ``g0`` on its root data, shape (d,), in the rows' units (gradients for
        gradients, model deltas for deltas).
    block_elements : int
        Size of the column blocks of the cosine computation.

    Returns
    -------
    FLTrustResult
        ``aggregate`` (shape (d,), ``x``'s dtype and device) and the ``trust`` scores (float64, (n,)).

    Raises
    ------
    ValueError
        If ``reference`` does not have ``d`` entries or is not finite.

    Examples
    --------
    Two clients agree with ``g0 = (1, 0)``, one points against it and gets no weight; each trusted
    row is rescaled to ``||g0|| = 1`` first, so the far larger second row counts no more than the first:

    >>> x = torch.tensor([[2.0, 0.0], [30.0, 40.0], [-5.0, 1.0]])
    >>> out = fltrust(x, torch.tensor([1.0, 0.0]))
    >>> [round(v, 4) for v in out.trust.tolist()]
    [1.0, 0.6, 0.0]
    >>> [round(v, 4) for v in out.aggregate.tolist()]  # (1 * (1, 0) + 0.6 * (0.6, 0.8)) / 1.6
    [0.85, 0.3]
    >>> fltrust(x, torch.zeros(2)).aggregate  # a zero reference trusts no one: no step
    tensor([0., 0.])
    """
    check_matrix(x)
    check_vector(reference, "reference", d=x.shape[1])
    if not all_finite(reference):
        raise ValueError("reference (the server's update) must be finite")
    norms = row_norms(x, block_elements)
    trust = trust_scores(x, reference, norms=norms, block_elements=block_elements)
    total = float(trust.sum())
    if total == 0.0:
        return FLTrustResult(torch.zeros(x.shape[1], dtype=x.dtype, device=x.device), trust)
    ref_norm = row_norms(reference.reshape(1, -1).to(x.device), block_elements)[0]
    # A trusted row has a nonzero norm (a zero row has cosine 0), so the division is safe.
    coefficients = torch.where(trust > 0, trust * ref_norm / (total * norms.clamp(min=torch.finfo(torch.float64).tiny)),
                               torch.zeros_like(trust))
    return FLTrustResult(combine(x, coefficients, block_elements), trust)
