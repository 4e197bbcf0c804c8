"""Update attacks: what a Byzantine client sends instead of its honest message g.

The "paper" column names the experiments each attack comes from: BGMD, Acharya, Hashemi, Jain,
Sanghavi, Dhillon and Topcu (2022), "Robust Training in High Dimensions via Block Coordinate
Geometric Median Descent"; norm-thresholding, Ghosh, Maity, Kadhe, Mazumdar and Ramchandran (2021),
"Communication-Efficient and Byzantine-Robust Distributed Learning with Error Feedback"; C-RSA, He,
Zhu and Ling (2023), "C-RSA: Byzantine-robust and communication-efficient distributed learning in
the non-convex and non-IID regime"; FED-CURE, Ghosh, Maity and Mazumdar (2023), "FED-CURE: A Robust
Federated Learning Algorithm with Cubic Regularized Newton".

=====================  ==========================  ====================================  ===================
name                   sent message                parameters (default)                  paper
=====================  ==========================  ====================================  ===================
``bit-flip``           −scale · g                  scale > 0 (100)                       Acharya et al. 2022
``gaussian``           g + N(0, variance)          variance > 0 (100; Ghosh et al.: 10)  Acharya et al. 2022,
                                                                                         Ghosh et al. 2021
``gaussian-replace``   N(0, std²) entries          std > 0 (1)                           He et al. 2023
``sign-flip``          −g                          —                                     He et al. 2023
``large-number``       every entry = value         finite value (10,000)                 He et al. 2023
``negative-update``    −c · g                      c ∈ (0, 1) (0.5)                      Ghosh et al. 2023
=====================  ==========================  ====================================  ===================
"""

from __future__ import annotations

import torch

from ._checks import check_open_unit, check_positive, check_real
from .base import UpdateAttack, randn_like
from .registry import register_attack

__all__ = ["BitFlip", "Gaussian", "GaussianReplace", "SignFlip", "LargeNumber", "NegativeUpdate"]


@register_attack("bit-flip")
class BitFlip(UpdateAttack):
    """Scaled bit-flip (Acharya et al., 2022): send −scale · g.

    Parameters
    ----------
    scale : float
        The factor s > 0 (default 100).

    Examples
    --------
    >>> BitFlip().corrupt(torch.tensor([1.0, -0.5, 0.0]))
    tensor([-100.,   50.,   -0.])
    """

    def __init__(self, scale: float = 100.0) -> None:
        self.scale = check_positive(scale, "scale")

    def _corrupt(self, message, generator):
        return message * (-self.scale)


@register_attack("gaussian")
class Gaussian(UpdateAttack):
    """Additive Gaussian noise (Acharya et al., 2022; Ghosh et al., 2021): send g + N(0, variance · I).

    Parameters
    ----------
    variance : float
        The noise variance σ² > 0 (default 100, as in Acharya et al., 2022; 10 in Ghosh et al., 2021).

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> out = Gaussian(variance=4.0).corrupt(torch.zeros(100_000), g)
    >>> round(float(out.var()))
    4
    """

    def __init__(self, variance: float = 100.0) -> None:
        self.variance = check_positive(variance, "variance")

    def _corrupt(self, message, generator):
        return message + randn_like(message, generator) * self.variance**0.5


@register_attack("gaussian-replace")
class GaussianReplace(UpdateAttack):
    """Pure Gaussian message (He et al., 2023): every entry replaced by an independent N(0, std²) draw.

    Parameters
    ----------
    std : float
        Standard deviation > 0 of the entries (default 1).

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> out = GaussianReplace().corrupt(torch.full((100_000,), 7.0), g)
    >>> abs(float(out.mean())) < 0.05, round(float(out.std()), 1)
    (True, 1.0)
    """

    def __init__(self, std: float = 1.0) -> None:
        self.std = check_positive(std, "std")

    def _corrupt(self, message, generator):
        return randn_like(message, generator) * self.std


@register_attack("sign-flip")
class SignFlip(UpdateAttack):
    """Sign flipping (He et al., 2023): send −g.

    Examples
    --------
    >>> SignFlip().corrupt(torch.tensor([2.0, -3.0]))
    tensor([-2.,  3.])
    """

    def _corrupt(self, message, generator):
        return -message


@register_attack("large-number")
class LargeNumber(UpdateAttack):
    """Large number (He et al., 2023): every entry of the message set to ``value``.

    Parameters
    ----------
    value : float
        The constant (default 10,000); must be finite and representable in the message's dtype
        (float16 tops out at 65,504).

    Examples
    --------
    >>> LargeNumber().corrupt(torch.tensor([0.1, -0.2]))
    tensor([10000., 10000.])
    """

    def __init__(self, value: float = 1e4) -> None:
        self.value = check_real(value, "value")

    def _corrupt(self, message, generator):
        return torch.full_like(message, self.value)


@register_attack("negative-update")
class NegativeUpdate(UpdateAttack):
    """Negative update (Ghosh et al., 2023): send −c · s with c ∈ (0, 1).

    Parameters
    ----------
    c : float
        The factor, strictly between 0 and 1 (default 0.5).

    Examples
    --------
    >>> NegativeUpdate(c=0.25).corrupt(torch.tensor([4.0, -8.0]))
    tensor([-1.,  2.])
    """

    def __init__(self, c: float = 0.5) -> None:
        self.c = check_open_unit(c, "c")

    def _corrupt(self, message, generator):
        return message * (-self.c)
