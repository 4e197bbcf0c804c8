"""Server side of norm-thresholding (Algorithms 1 and 2) and the ℓ2-ball projection Π_W.

The algorithms are those of Ghosh, Maity, Kadhe, Mazumdar and Ramchandran (2021), "Communication-Efficient and
Byzantine-Robust Distributed Learning with Error Feedback".

The server ranks the n client messages by a norm, keeps the (1 − β) fraction with the smallest
norms (:func:`~fedrobust.aggregators.norm_trim`) and steps along their mean:

- Algorithm 1, Option I: rank by the norm of the *uncompressed* gradient each client reports
  (pass ``norms``); Option II: rank by the norm of the compressed message itself (``norms=None``).
  Step w ← Π_W(w − lr·mean_kept Q(∇F_i(w))).
- Algorithm 2 (error feedback): the messages are Q(lr·∇F_i(w) + e_i), already scaled by the step
  size on the client (:func:`~fedrobust.optim.error_feedback.error_feedback_step`), so the caller
  passes ``lr=1`` (the paper's Algorithm 2 multiplies by γ again on the server, which would
  apply it twice) and ranks by the messages' own norms.

β must exceed the Byzantine fraction for the guarantees of Ghosh et al. (2021) to hold.
"""

from __future__ import annotations

import torch

from ..aggregators.norm_trim import norm_threshold_mean
from ._checks import check_positive, check_rows, check_vector

__all__ = ["norm_threshold_mean", "norm_threshold_step", "project_ball"]


def project_ball(x: torch.Tensor, radius: float, center: torch.Tensor | None = None) -> torch.Tensor:
    """Euclidean projection of ``x`` on the ball of ``radius`` around ``center`` (default: the origin).

    Examples
    --------
    >>> project_ball(torch.tensor([3.0, 4.0]), radius=1.0)
    tensor([0.6000, 0.8000])
    >>> project_ball(torch.tensor([0.3, 0.4]), radius=1.0)
    tensor([0.3000, 0.4000])
    """
    x = check_vector(x, "x")
    radius = check_positive(radius, "radius")
    c = torch.zeros_like(x) if center is None else check_vector(center, "center", d=x.numel()).to(x)
    diff = x - c
    norm = torch.linalg.vector_norm(diff)
    if float(norm) <= radius:
        return x.clone()
    return c + diff * (radius / norm)


def norm_threshold_step(
    x: torch.Tensor,
    messages: torch.Tensor,
    beta: float,
    lr: float,
    norms: torch.Tensor | None = None,
    radius: float | None = None,
    *,
    overwrite: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One server step of norm-thresholded (compressed) gradient descent: x ← Π_W(x − lr·mean_kept).

    Parameters
    ----------
    x : torch.Tensor
        The global model, shape (d,).
    messages : torch.Tensor
        Decoded client messages Q(g_i), shape (n, d), on ``x``'s device.
    beta : float
        Fraction of clients dropped, in [0, 1) (``beta = 0``: the plain mean, the non-robust baseline).
    lr : float
        Server step size γ > 0; pass 1 for Algorithm 2, whose messages already carry γ.
    norms : torch.Tensor, optional
        Norms (n,) the clients reported for their uncompressed gradients (Option I); default:
        the messages' own norms (Option II and Algorithm 2).
    radius : float, optional
        Project the result on the ℓ2 ball of this radius around the origin (Π_W); off by default.
    overwrite : bool
        Let :func:`norm_threshold_mean` reorder the rows of ``messages`` in place (no copy of the
        kept rows); the server passes its scratch matrix of decoded replies.

    Returns
    -------
    new_x : torch.Tensor
        The updated model, in ``x``'s dtype and device.
    kept : torch.Tensor
        int64 indices of the kept clients, smallest norm first.

    Examples
    --------
    >>> x = torch.zeros(2)
    >>> msgs = torch.tensor([[1.0, 1.0], [3.0, 1.0], [-50.0, 80.0]])
    >>> norm_threshold_step(x, msgs, beta=0.34, lr=0.5)
    (tensor([-1.0000, -0.5000]), tensor([0, 1]))
    >>> norm_threshold_step(x, msgs, beta=0.34, lr=0.5, norms=torch.tensor([9.0, 1.0, 2.0]))[1]
    tensor([1, 2])
    """
    x = check_vector(x, "x")
    check_rows(messages, "messages", x)
    lr = check_positive(lr, "lr")
    step, kept = norm_threshold_mean(messages, beta, norms=norms, overwrite=overwrite)
    new_x = x - lr * step.to(x.dtype)
    if radius is not None:
        new_x = project_ball(new_x, radius)
    return new_x, kept
