"""Server step of signSGD with majority vote, a baseline of the norm-thresholding and C-RSA papers.

From Bernstein, Zhao, Azizzadenesheli and Anandkumar (2019), "signSGD with Majority Vote is
Communication Efficient and Fault Tolerant" (ICLR); Ghosh, Maity, Kadhe, Mazumdar and Ramchandran (2021),
"Communication-Efficient and Byzantine-Robust Distributed Learning with Error Feedback" and He, Zhu and Ling
(2023), "C-RSA: Byzantine-robust and communication-efficient distributed learning in the non-convex and
non-IID regime" compare against it.
"""

from __future__ import annotations

import torch

from ..aggregators import sign_majority
from ._checks import check_positive, check_rows, check_vector

__all__ = ["signsgd_step"]


def signsgd_step(x: torch.Tensor, signs: torch.Tensor, lr: float) -> torch.Tensor:
    """x ← x − lr·sign(Σ_i sign(s_i)): step against the coordinate-wise majority of the clients' signs.

    Clients send sign(∇F_i(x)) (the ``sign`` compressor, one bit per coordinate); a tie gives 0.

    Parameters
    ----------
    x : torch.Tensor
        The global model, shape (d,).
    signs : torch.Tensor
        The clients' signs (or any vectors: only their signs count), shape (n, d), floating point,
        on ``x``'s device.
    lr : float
        Step size > 0: every coordinate moves by exactly ``lr`` or not at all.

    Returns
    -------
    torch.Tensor
        The updated model, in ``x``'s dtype and device.

    Examples
    --------
    >>> signs = torch.tensor([[1.0, -1.0, 1.0], [1.0, 1.0, -1.0], [-1.0, -1.0, 0.0]])
    >>> signsgd_step(torch.zeros(3), signs, lr=0.1)
    tensor([-0.1000,  0.1000,  0.0000])
    """
    x = check_vector(x, "x")
    check_rows(signs, "signs", x)
    lr = check_positive(lr, "lr")
    return x - lr * sign_majority(signs).to(x.dtype)
