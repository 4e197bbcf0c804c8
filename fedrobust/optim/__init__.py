"""Client- and server-side update rules of three papers as pure torch functions (no Flower).

The papers: norm-thresholding, Ghosh, Maity, Kadhe, Mazumdar and Ramchandran (2021), "Communication-Efficient
and Byzantine-Robust Distributed Learning with Error Feedback"; C-RSA, He, Zhu and Ling (2023), "C-RSA:
Byzantine-robust and communication-efficient distributed learning in the non-convex and non-IID regime";
FED-CURE, Ghosh, Maity and Mazumdar (2023), "FED-CURE: A Robust Federated Learning Algorithm with Cubic
Regularized Newton".

Every function checks its arguments, runs unchanged on CPU or CUDA (results on the input's device)
and never keeps state: memories and models go in and come out. The Flower strategies and clients are
thin shells around these.

===========================  ====================================================================
``error_feedback_step``      norm-thresholding Alg. 2 client: p = lr·g + e, send Q(p), keep e' = p − Q(p)
``norm_threshold_step``      norm-thresholding Alg. 1/2 server: keep the (1 − β) smallest norms, x ← Π_W(x − lr·mean)
``norm_threshold_mean``      the kept rows' mean and indices (shared by the two norm-threshold servers)
``project_ball``             Π_W, Euclidean projection on an ℓ2 ball
``signsgd_step``             signSGD with majority vote: x ← x − lr·sign(Σ sign(s_i))
``draw_coordinates``         C-RSA's ω: rand-l from a seed, or top-l by |x₀|
``worker_message``           C-RSA upload sign(C(x₀) − x_k) on ω, int8
``worker_update``            C-RSA worker: x_k ← x_k − α[∇f(x_k) + λ·P_ω(sign(x_k − C(x₀)))]
``master_update``            C-RSA master: x₀ ← x₀ − α[∇f₀(x₀) + λ·Σ_k P_ω(m_k)]
``pack_signs``               ternary messages as two packed bit-planes (``unpack_signs`` back;
                             ``pack_signs_of`` packs sign(v) of a float vector)
``hvp``                      Hessian-vector product by double backward
``cubic_step``               FED-CURE client: approximate cubic-regularised Newton step
``fedcure_step``             FED-CURE server: x ← x + η·mean of the (1 − β) smallest-norm steps
===========================  ====================================================================
"""

from .cubic import cubic_step, hvp
from .error_feedback import error_feedback_step
from .fedcure import fedcure_step
from .norm_threshold import norm_threshold_mean, norm_threshold_step, project_ball
from .rsa import (
    METHODS, draw_coordinates, master_update, pack_signs, pack_signs_of, unpack_signs, worker_message, worker_update,
)
from .schedule import LR_SCHEDULES, scheduled_lr
from .signsgd import signsgd_step

__all__ = [
    "LR_SCHEDULES",
    "scheduled_lr",
    "METHODS",
    "cubic_step",
    "draw_coordinates",
    "error_feedback_step",
    "fedcure_step",
    "hvp",
    "master_update",
    "norm_threshold_mean",
    "norm_threshold_step",
    "pack_signs",
    "pack_signs_of",
    "project_ball",
    "signsgd_step",
    "unpack_signs",
    "worker_message",
    "worker_update",
]
