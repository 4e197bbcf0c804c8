"""signSGD with majority vote.

From Bernstein, Zhao, Azizzadenesheli and Anandkumar (2019), "signSGD with Majority Vote is Communication
Efficient and Fault Tolerant" (ICLR).
"""

from __future__ import annotations

import torch

from ..core.checks import check_matrix
from ._chunks import column_blocks


def sign_majority(x: torch.Tensor) -> torch.Tensor:
    """Coordinate-wise majority vote of the rows' signs: ``sign(sum_i sign(x_i))``.

    A tie, or a coordinate where every row is zero, gives 0.

    Parameters
    ----------
    x : torch.Tensor
        Client vectors (or their signs), shape (n, d).

    Returns
    -------
    torch.Tensor
        Values in {-1, 0, 1}, shape (d,), in ``x``'s dtype and device.

    Examples
    --------
    >>> sign_majority(torch.tensor([[1.0, -2.0, 0.5], [3.0, -1.0, -0.5], [-7.0, 4.0, 0.0]]))
    tensor([ 1., -1.,  0.])
    """
    check_matrix(x)
    out = torch.empty(x.shape[1], dtype=x.dtype, device=x.device)
    for start, block in column_blocks(x):
        torch.sign(torch.sign(block).sum(dim=0), out=out[start : start + block.shape[1]])
    return out
