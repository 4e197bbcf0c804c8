"""Client side of Algorithm 2 of Ghosh, Maity, Kadhe, Mazumdar and Ramchandran (2021),
"Communication-Efficient and Byzantine-Robust Distributed Learning with Error Feedback": compressed gradient
steps with error feedback.

Each honest client keeps a memory e (zeros at the start), forms p = lr·grad + e, sends Q(p) and
keeps e' = p − Q(p): what compression dropped this round is added back to the next round's step.
The server then averages the kept messages with no further step size (see
:func:`~fedrobust.optim.norm_threshold.norm_threshold_step` with ``lr=1``).
"""

from __future__ import annotations

import numpy as np
import torch

from ..compression import Compressor, get_compressor
from ._checks import check_positive, check_vector

__all__ = ["error_feedback_step"]


def error_feedback_step(
    grad: torch.Tensor,
    memory: torch.Tensor | None,
    lr: float,
    compressor: Compressor | str,
    seed: int | None = None,
) -> tuple[dict[str, np.ndarray], torch.Tensor, torch.Tensor]:
    """One error-feedback step: p = lr·grad + memory, q = Q(p), new memory = p − q.

    Parameters
    ----------
    grad : torch.Tensor
        The client's flat gradient, shape (d,), finite.
    memory : torch.Tensor or None
        The client's error memory e, shape (d,); None means zeros (the first round).
    lr : float
        Step size γ > 0 (it scales the gradient *before* compression, so the server uses lr = 1).
    compressor : Compressor or str
        The compressor Q (an instance, or a registry name built with default parameters).
    seed : int, optional
        Seed for random compressors (ignored by deterministic ones).

    Returns
    -------
    payload : dict[str, numpy.ndarray]
        ``compressor.encode(p)``: what travels to the server.
    q : torch.Tensor
        ``compressor.decode(payload)``: exactly what the server will decode, float32 on ``grad``'s device.
    new_memory : torch.Tensor
        p − q, in ``grad``'s dtype and device.

    Examples
    --------
    >>> g = torch.tensor([1.0, -3.0, 0.5, 2.0])
    >>> payload, q, e = error_feedback_step(g, None, lr=1.0, compressor="scaled-sign")
    >>> q
    tensor([ 1.6250, -1.6250,  1.6250,  1.6250])
    >>> e
    tensor([-0.6250, -1.3750, -1.1250,  0.3750])
    >>> _, q2, e2 = error_feedback_step(g, e, lr=1.0, compressor="scaled-sign")
    >>> torch.allclose(q + q2 + e2, 2 * g)   # nothing is lost: sum of sent + memory = sum of steps
    True
    """
    grad = check_vector(grad, "grad")
    lr = check_positive(lr, "lr")
    compressor = get_compressor(compressor)
    p = lr * grad.detach()
    if memory is not None:
        memory = check_vector(memory, "memory", d=grad.numel())
        if memory.device != grad.device:
            raise ValueError(f"memory must be on grad's device {grad.device}, got {memory.device}")
        p = p + memory.to(grad.dtype)
    payload = compressor.encode(p, seed=seed)
    q = compressor.decode(payload, p.numel(), device=p.device)
    return payload, q, p - q.to(p.dtype)
