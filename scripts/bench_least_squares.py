"""The least-squares experiment of norm-thresholding with compression and error feedback, vs baselines.

The paper: Ghosh, Maity, Kadhe, Mazumdar and Ramchandran (2021), "Communication-Efficient and Byzantine-Robust Distributed Learning with Error Feedback"
(IEEE JSAIT). Setup (its §8): A ∈ R^{N×d} and w* with i.i.d. N(0, 1) entries, b = A·w*, the rows split evenly
over m workers (F_i(w) = ‖A_i w − b_i‖² / (2 n_i)), full local gradients, w₀ = 0. Byzantine workers
(a fixed random set) add N(0, 10·I) to their gradient (the ``gaussian`` attack, variance 10) and
then follow the protocol (compress, report norms, keep an error memory). Metric: ‖w_t − w*‖ / ‖w*‖.

Methods (compressor: ``scaled-sign``, Q(x) = (‖x‖₁/d)·sign(x)):

======================  =====================================================================
``mean``                Q(g_i), server mean (compressed GD without robustness)
``trimmed-mean``        uncompressed g_i, coordinate-wise trimmed mean (β from each side)
``signsgd-mv``          sign(g_i), majority vote (its own step size)
``norm-threshold-opt1`` Q(g_i) + ‖g_i‖, rank by the reported norms (Alg. 1, Option I)
``norm-threshold-opt2`` Q(g_i), rank by ‖Q(g_i)‖ (Option II)
``norm-threshold-ef``   Q(γ g_i + e_i) with error feedback, rank by message norm, lr 1 (Alg. 2)
======================  =====================================================================

By default Q is applied to all rows at once with the closed form of ``scaled-sign`` (same values
as the compressor up to float rounding); ``--exact`` sends every message through the compressor's
encode/decode and :func:`~fedrobust.optim.error_feedback_step` instead (slower, same results).

Run: ``.venv/bin/python scripts/bench_least_squares.py`` (``--quick`` for a small problem).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import torch

from fedrobust.aggregators import trimmed_mean
from fedrobust.attacks import get_attack
from fedrobust.compression import get_compressor
from fedrobust.optim import error_feedback_step, norm_threshold_step, signsgd_step

METHODS = (
    "mean",
    "trimmed-mean",
    "signsgd-mv",
    "norm-threshold-opt1",
    "norm-threshold-opt2",
    "norm-threshold-ef",
)
COMPRESSOR = "scaled-sign"


@dataclass
class Problem:
    """Least squares split over workers: ``A`` (m, n_i, d), ``b`` (m, n_i), the solution ``w_star`` (d,)."""

    A: torch.Tensor
    b: torch.Tensor
    w_star: torch.Tensor

    @property
    def num_workers(self) -> int:
        return self.A.shape[0]

    def gradients(self, w: torch.Tensor) -> torch.Tensor:
        """All local gradients A_iᵀ(A_i w − b_i)/n_i, shape (m, d)."""
        residual = torch.einsum("mnd,d->mn", self.A, w) - self.b
        return torch.einsum("mnd,mn->md", self.A, residual) / self.A.shape[1]

    def error(self, w: torch.Tensor) -> float:
        return float(torch.linalg.vector_norm(w - self.w_star) / torch.linalg.vector_norm(self.w_star))


def make_problem(rows: int = 4000, d: int = 1000, workers: int = 200, seed: int = 0, dtype=torch.float64) -> Problem:
    """A (rows×d) and w* Gaussian, b = A·w*, ``rows / workers`` rows per worker."""
    if rows % workers:
        raise ValueError(f"rows must be a multiple of workers, got rows={rows}, workers={workers}")
    gen = torch.Generator().manual_seed(seed)
    A = torch.randn(rows, d, generator=gen, dtype=dtype)
    w_star = torch.randn(d, generator=gen, dtype=dtype)
    return Problem(A.reshape(workers, rows // workers, d), (A @ w_star).reshape(workers, rows // workers), w_star)


def scaled_sign_rows(x: torch.Tensor) -> torch.Tensor:
    """``scaled-sign`` applied to every row at once: (‖x_i‖₁/d)·sign(x_i)."""
    return x.abs().mean(dim=1, keepdim=True) * torch.sign(x)


def compress_rows(x: torch.Tensor, exact: bool) -> torch.Tensor:
    """Q applied to every row, through the compressor's payloads when ``exact``."""
    if not exact:
        return scaled_sign_rows(x)
    q = get_compressor(COMPRESSOR)
    return torch.stack([q.compress(row).to(x.dtype) for row in x])


def simulate(
    problem: Problem,
    method: str,
    num_byzantine: int = 0,
    beta: float = 0.06,
    lr: float = 0.5,
    rounds: int = 100,
    threshold: float = 1e-2,
    seed: int = 1,
    exact: bool = False,
    attack=None,
) -> dict:
    """Run one method; return ``rounds_to_threshold`` (None if never), ``final_error`` and ``errors``.

    ``beta`` is the trimmed fraction (norm thresholding: dropped by norm; trimmed mean: from each
    side); ``lr`` is γ (for ``signsgd-mv`` the per-coordinate step). ``attack`` is the Byzantine
    workers' update attack on their gradients (default: ``gaussian`` with variance 10, as in Ghosh et al. (2021)).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    m, d = problem.num_workers, problem.w_star.numel()
    gen = torch.Generator().manual_seed(seed)
    byzantine = torch.randperm(m, generator=gen)[:num_byzantine]
    attack = get_attack("gaussian", variance=10.0) if attack is None else attack
    w = torch.zeros(d, dtype=problem.w_star.dtype)
    memory = torch.zeros(m, d, dtype=w.dtype)
    errors, hit = [], None
    for t in range(rounds):
        grads = problem.gradients(w)
        norms = torch.linalg.vector_norm(grads, dim=1)
        if num_byzantine:
            grads[byzantine] = attack.corrupt(grads[byzantine], gen)
            norms[byzantine] = torch.linalg.vector_norm(grads[byzantine], dim=1)  # Option I: they adhere
        if method == "mean":
            w, _ = norm_threshold_step(w, compress_rows(grads, exact), 0.0, lr)
        elif method == "trimmed-mean":
            w = w - lr * trimmed_mean(grads, beta)
        elif method == "signsgd-mv":
            w = signsgd_step(w, torch.sign(grads), lr)
        elif method == "norm-threshold-opt1":
            w, _ = norm_threshold_step(w, compress_rows(grads, exact), beta, lr, norms=norms)
        elif method == "norm-threshold-opt2":
            w, _ = norm_threshold_step(w, compress_rows(grads, exact), beta, lr)
        else:  # norm-threshold-ef
            if exact:
                sent = []
                for i in range(m):
                    _, q, memory[i] = error_feedback_step(grads[i], memory[i], lr, COMPRESSOR)
                    sent.append(q.to(w.dtype))
                messages = torch.stack(sent)
            else:
                p = lr * grads + memory
                messages = scaled_sign_rows(p)
                memory = p - messages
            w, _ = norm_threshold_step(w, messages, beta, 1.0)
        errors.append(problem.error(w))
        if hit is None and errors[-1] < threshold:
            hit = t + 1
        if not errors[-1] < 1e12:
            break
    return {"rounds_to_threshold": hit, "final_error": errors[-1], "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small problem (1000 x 250, 50 workers)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per run (default 400; 100 with --quick)")
    parser.add_argument("--lr", type=float, default=0.5, help="step size γ (default 0.5)")
    parser.add_argument("--sign-lr", type=float, default=0.01, help="signSGD step (default 0.01)")
    parser.add_argument("--threshold", type=float, default=1e-2, help="relative error target (default 1e-2)")
    parser.add_argument("--exact", action="store_true", help="compress each message through its payload")
    args = parser.parse_args()
    if args.quick:
        problem, settings, rounds = make_problem(1000, 250, 50), [(0, 4), (3, 4), (5, 6)], 100
    else:
        problem, settings, rounds = make_problem(), [(0, 12), (10, 12), (20, 22)], 400
    rounds = args.rounds or rounds
    m = problem.num_workers
    print(f"least squares: A {m * problem.A.shape[1]} x {problem.w_star.numel()}, {m} workers, "
          f"compressor {COMPRESSOR}, gamma {args.lr}, signSGD step {args.sign_lr}, {rounds} rounds, "
          f"attack: gradient + N(0, 10 I), metric ||w - w*|| / ||w*||, threshold {args.threshold:g}")
    print()
    print("| method | byzantine | beta*m | rounds to threshold | final error | time (s) |")
    print("|---|---|---|---|---|---|")
    for f, beta_m in settings:
        for method in METHODS:
            lr = args.sign_lr if method == "signsgd-mv" else args.lr
            start = time.perf_counter()
            out = simulate(problem, method, f, beta_m / m, lr, rounds, args.threshold, exact=args.exact)
            took = time.perf_counter() - start
            hit = out["rounds_to_threshold"]
            print(f"| {method} | {f} | {beta_m} | {'-' if hit is None else hit} | "
                  f"{out['final_error']:.3e} | {took:.1f} |", flush=True)


if __name__ == "__main__":
    main()
