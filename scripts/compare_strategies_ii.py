"""Strategies II (norm-thresholding, C-RSA, FED-CURE) against their baselines: the full comparison of
issue #6's acceptance items.

The papers: Ghosh, Maity, Kadhe, Mazumdar and Ramchandran (2021), "Communication-Efficient and Byzantine-Robust Distributed Learning with Error Feedback"; He, Zhu and Ling (2023), "C-RSA: Byzantine-robust and communication-efficient distributed learning in the non-convex and non-IID regime"; Ghosh, Maity and Mazumdar (2023), "FED-CURE: A Robust Federated Learning Algorithm with Cubic Regularized Newton".

Every run uses fedrobust's own strategies and clients: either through Flower's simulation engine
(``--engine ray``, :func:`fedrobust.simulate`) or, by default, in this process with the same
objects (``--engine inprocess``, :func:`run_inprocess`: the App's :func:`~fedrobust.run.app.make_strategy`
and :func:`~fedrobust.run.app.make_client`, a client rebuilt for every message from its partition's
``Context`` as Flower does, messages as Flower ``FitIns`` / ``FitRes``; :mod:`fedrobust.run.inprocess`),
which skips Ray's start-up and per-message overhead on small machines. Sections (``--only`` picks some):

``least-squares``
    Ghosh et al. (2021), §8, on a registered least-squares data set (``least-squares``: A ∈ R^{4000×1000} Gaussian,
    b = A·w*, 200 clients with 20 rows each; ``--quick``: 1000×250 over 50 clients), model
    ``linear-regression`` (loss ‖Aw − b‖²/(2n), no bias), full local gradients (batch = the 20
    rows), compressor ``scaled-sign``, γ = 0.5; Byzantine clients add N(0, 10·I) to their gradient.
    Metric ‖w_t − w*‖/‖w*‖: rounds to 1e-2 and final value, for ``mean-sgd`` on compressed
    gradients (β = 0: ``norm-threshold`` with beta 0), ``norm-threshold`` options 1 and 2 and
    ``norm-threshold-ef``.
``c-rsa``
    He et al. (2023) on ``mnist5k`` / ``mlp``, 10 clients, ``half-class`` non-IID, 2 of 10 Byzantine with
    ``large-number``, ``sign-flip`` and ``gaussian-replace``: final accuracy (mean of the last 3
    rounds) and the drop from each strategy's clean run, for ``c-rsa`` (ratio 0.5), ``rsa``,
    ``mean-sgd``, ``cmd``, ``krum`` and ``signsgd-mv``; plus bytes up / down per round.
``fed-cure``
    Ghosh et al. (2023) on ``breast-cancer`` over 20 clients, ``logistic`` with weight decay λ/n (λ = 1, so the
    objective is the mean logistic loss + (λ/2n)‖w‖², the bias penalised too) against the optimum
    scikit-learn's solver finds for the same objective; clean, 20% ``gaussian`` and 20%
    ``negative-update`` attackers with β = ψ + 2/m; ``identity`` and ``bernoulli-qsgd``.

Run: ``.venv/bin/python scripts/compare_strategies_ii.py`` (``--quick`` for a smaller, faster pass).
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from fedrobust.config import RunConfig
from fedrobust.data import DATASETS, DatasetSplits, register_dataset
from fedrobust.models import MODELS, FedModel, register_model
from fedrobust.run.inprocess import run_inprocess
from fedrobust.models.base import flat_features


def run(cfg: RunConfig, engine: str) -> dict[str, Any]:
    """One run on the chosen engine."""
    if engine == "ray":
        import fedrobust

        return fedrobust.simulate(cfg)
    return run_inprocess(cfg)


# --------------------------------------------------------- norm-thresholding's least squares


class LinearRegression(FedModel):
    """Least squares as a fedrobust model: ``w`` (no bias, starts at 0) on examples ``[a, b]``.

    :class:`~fedrobust.data.DatasetSplits` holds integer class labels, so each example carries its
    real target b as a last feature column; ``forward`` returns (aᵀw, b) and the loss is
    mean((aᵀw − b)²)/2 (the labels are unused zeros).
    """

    def __init__(self, input_shape=(1001,), num_classes: int = 2) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(flat_features(input_shape) - 1, 1, bias=False)
        torch.nn.init.zeros_(self.linear.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        return torch.cat([self.linear(x[:, :-1]), x[:, -1:]], dim=1)

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((out[:, 0] - out[:, 1]) ** 2).mean()

    def predict(self, out: torch.Tensor) -> torch.Tensor:
        return torch.zeros(out.shape[0], dtype=torch.long, device=out.device)


@functools.lru_cache(maxsize=4)
def least_squares_problem(rows: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A, b, w*) with Gaussian A and w*, b = A·w*, float32 (rows and w* drawn as in Ghosh et al. (2021), §8)."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((rows, d)).astype(np.float32)
    w_star = rng.standard_normal(d).astype(np.float32)
    return A, (A.astype(np.float64) @ w_star).astype(np.float32), w_star


def register_least_squares(rows: int, d: int) -> str:
    """Register the data set ``least-squares-{rows}x{d}`` and the ``linear-regression`` model once."""
    name = f"least-squares-{rows}x{d}"
    if "linear-regression" not in MODELS:
        register_model("linear-regression", LinearRegression)
    if name not in DATASETS:

        def loader(data_dir, seed, download):
            A, b, _ = least_squares_problem(rows, d)
            x = np.hstack([A, b[:, None]])  # the target rides as the last column (labels are ints)
            y = np.zeros(rows, dtype=np.int64)
            return DatasetSplits(name, x, y, x[:1], y[:1], 2, (d + 1,))

        register_dataset(name, loader)
    return name


def relative_error_fn(rows: int, d: int):
    """‖w − w*‖ / ‖w*‖ of a flat model."""
    w_star = torch.from_numpy(least_squares_problem(rows, d)[2]).double()
    return lambda x: float(torch.linalg.vector_norm(x.double().cpu() - w_star) / torch.linalg.vector_norm(w_star))


def least_squares_run(strategy: str, rows: int, d: int, workers: int, byzantine: int, rounds: int,
                      engine: str = "inprocess", **keys: Any) -> list[float]:
    """The relative error after every round of one least-squares run."""
    name = register_least_squares(rows, d)
    cfg = RunConfig(
        strategy=strategy, dataset=name, model="linear-regression", num_clients=workers, clients_per_round=workers,
        rounds=rounds, batch_size=rows // workers, lr=0.5, attack="gaussian" if byzantine else "none",
        attack_params="variance=10" if byzantine else "", byzantine_fraction=byzantine / workers, device="cpu",
        **keys,
    )
    error = relative_error_fn(rows, d)
    errors: list[float] = []
    if engine != "inprocess":
        raise ValueError("the least-squares data set is registered in this process: use the in-process engine")
    run_inprocess(cfg, after_round=lambda strategy, rnd: errors.append(error(strategy.x)))
    return errors


def first_below(errors: Iterable[float], threshold: float) -> int | None:
    """The first round (from 1) whose error is below ``threshold``, or None."""
    return next((i + 1 for i, e in enumerate(errors) if e < threshold), None)


LS_METHODS = {
    "mean (compressed, beta=0)": {"strategy": "norm-threshold", "beta": 0.0},
    "norm-threshold opt 1": {"strategy": "norm-threshold", "norm_option": 1},
    "norm-threshold opt 2": {"strategy": "norm-threshold", "norm_option": 2},
    "norm-threshold-ef": {"strategy": "norm-threshold-ef"},
}


def section_least_squares(args: argparse.Namespace) -> None:
    rows, d, workers, settings = (1000, 250, 50, [(0, 4), (3, 4), (5, 6)]) if args.quick else (
        4000, 1000, 200, [(0, 12), (10, 12), (20, 22)])
    rounds = args.ls_rounds or (100 if args.quick else 150)
    print(f"\n## Norm-thresholding least squares (Flower strategies, in-process): A {rows} x {d}, {workers} clients, "
          f"scaled-sign, gamma 0.5, {rounds} rounds, Byzantine gradient + N(0, 10 I)\n")
    print("| method | byzantine | beta*m | rounds to 1e-2 | final error | seconds |")
    print("|---|---|---|---|---|---|")
    for f, beta_m in settings:
        for label, keys in LS_METHODS.items():
            keys = dict(keys)
            keys.setdefault("beta", beta_m / workers)
            start = time.perf_counter()
            errors = least_squares_run(keys.pop("strategy"), rows, d, workers, f, rounds, **keys)
            hit = first_below(errors, 1e-2)
            print(f"| {label} | {f} | {beta_m if keys['beta'] else 0} | {'-' if hit is None else hit} | "
                  f"{errors[-1]:.3e} | {time.perf_counter() - start:.1f} |", flush=True)


# ------------------------------------------------------------------------------------------ C-RSA

CRSA_STRATEGIES = {
    "c-rsa": {"strategy": "c-rsa"},
    "rsa": {"strategy": "rsa"},
    "mean-sgd": {"strategy": "mean-sgd"},
    "cmd": {"strategy": "cmd"},
    "krum": {"strategy": "krum"},
    "signsgd-mv": {"strategy": "signsgd-mv"},
}
CRSA_ATTACKS = ("none", "large-number", "sign-flip", "gaussian-replace")


def crsa_config(strategy: str, attack: str, rounds: int, **keys: Any) -> RunConfig:
    """The C-RSA comparison's run: mnist5k, mlp, 10 clients, half-class, 2 Byzantine."""
    base = dict(
        strategy=strategy, dataset="mnist5k", model="mlp", partitioner="half-class", num_clients=10,
        clients_per_round=10, rounds=rounds, batch_size=32, lr=0.1, lam=0.002, weight_decay=0.0, seed=0,
        attack=attack, byzantine_fraction=0.2 if attack != "none" else 0.0,
    )
    if strategy == "signsgd-mv":
        base["lr"] = 0.001
    base.update(keys)
    return RunConfig(**base)


def final_accuracy(results: dict[str, Any], last: int = 3) -> float:
    """Mean test accuracy of the last ``last`` rounds."""
    return float(np.mean([r["accuracy"] for r in results["rounds"][-last:]]))


def section_c_rsa(args: argparse.Namespace) -> None:
    rounds = args.crsa_rounds or (30 if args.quick else 60)
    print(f"\n## C-RSA: mnist5k, mlp, 10 clients, half-class non-IID, 2 of 10 Byzantine, {rounds} rounds, "
          f"lr (alpha) 0.1, lam 0.002, batch 32, engine {args.engine} (signsgd-mv: lr 0.001)\n")
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for name, keys in CRSA_STRATEGIES.items():
        for attack in CRSA_ATTACKS:
            start = time.perf_counter()
            res = run(crsa_config(attack=attack, rounds=rounds, **keys), args.engine)
            table[name, attack] = {
                "acc": final_accuracy(res),
                "up": float(np.mean([r["bytes_up"] for r in res["rounds"]])),
                "down": float(np.mean([r["bytes_down"] for r in res["rounds"][1:]] or [0])),
                "seconds": time.perf_counter() - start,
            }
            print(f"  {name} / {attack}: {table[name, attack]['acc']:.3f} ({table[name, attack]['seconds']:.0f} s)",
                  flush=True)
    print("\n| strategy | " + " | ".join(CRSA_ATTACKS) + " | bytes up / round | bytes down / round (after round 1) |")
    print("|---|" + "---|" * (len(CRSA_ATTACKS) + 2))
    for name in CRSA_STRATEGIES:
        clean = table[name, "none"]["acc"]
        cells = [f"{clean:.3f}"] + [
            f"{table[name, a]['acc']:.3f} ({100 * (table[name, a]['acc'] - clean):+.1f})" for a in CRSA_ATTACKS[1:]
        ]
        print(f"| {name} | " + " | ".join(cells) + f" | {table[name, 'none']['up']:,.0f} | "
              f"{table[name, 'none']['down']:,.0f} |")
    ratio = table["c-rsa", "none"]["up"] / table["rsa", "none"]["up"]
    print(f"\nbytes up, c-rsa (ratio 0.5) / rsa: {ratio:.3f}")


# --------------------------------------------------------------------------------------- FED-CURE


def breast_cancer_optimum(cfg: RunConfig) -> tuple[float, Any]:
    """(F*, F) for F(w) = mean logistic loss over the training set + (weight-decay/2)‖w‖² (bias included).

    F* is scikit-learn's optimum of the same objective: ``LogisticRegression(C = 1/(n·wd),
    fit_intercept=False)`` on the features with a constant 1 appended (so the bias is penalised too).
    """
    from sklearn.linear_model import LogisticRegression

    from fedrobust.run.build import load_splits

    splits = load_splits(cfg)
    X = splits.x_train.astype(np.float64)
    y = splits.y_train.astype(np.float64)
    n, wd = len(y), cfg.weight_decay
    X1 = np.hstack([X, np.ones((n, 1))])
    clf = LogisticRegression(C=1.0 / (n * wd), fit_intercept=False, tol=1e-12, max_iter=100_000).fit(X1, y)
    Xt, yt = torch.from_numpy(X1), torch.from_numpy(2 * y - 1)

    def objective(w: torch.Tensor) -> float:
        w = w.double().cpu()
        return float(torch.nn.functional.softplus(-yt * (Xt @ w)).mean() + wd / 2 * (w**2).sum())

    return objective(torch.from_numpy(clf.coef_.ravel())), objective


def fedcure_config(attack: str, rounds: int, psi: float = 0.2, **keys: Any) -> RunConfig:
    """The FED-CURE run: breast-cancer, logistic, 20 clients, λ = 1 (weight-decay = 1/n), β = ψ + 2/m."""
    from fedrobust.run.build import load_splits

    n = load_splits(RunConfig(dataset="breast-cancer")).num_train
    m = 20
    psi = psi if attack != "none" else 0.0
    base = dict(
        strategy="fed-cure", dataset="breast-cancer", model="logistic", num_clients=m, clients_per_round=m,
        rounds=rounds, lr=1.0, cubic_m=10.0, cubic_steps=10, eta=1.0, weight_decay=1.0 / n, device="cpu",
        attack=attack, byzantine_fraction=psi, beta=(psi + 2 / m) if attack != "none" else 0.0,
    )
    base.update(keys)
    return RunConfig(**base)


def fedcure_gap(cfg: RunConfig, engine: str) -> list[float]:
    """F(x_t) − F* after every round."""
    f_opt, objective = breast_cancer_optimum(cfg)
    gaps: list[float] = []
    if engine != "inprocess":
        raise ValueError("the gap needs the model after every round: use the in-process engine")
    run_inprocess(cfg, after_round=lambda strategy, rnd: gaps.append(objective(strategy.x) - f_opt))
    return gaps


def section_fed_cure(args: argparse.Namespace) -> None:
    rounds = args.fc_rounds or (30 if args.quick else 200)
    print(f"\n## FED-CURE: breast-cancer, logistic, 20 clients, lambda 1, M 10, 10 solver steps, "
          f"eta 1, {rounds} rounds; gap F(x) - F* to scikit-learn's optimum\n")
    print("| compressor | attack | beta | final gap | min gap | rounds to 1e-2 | seconds |")
    print("|---|---|---|---|---|---|---|")
    for compressor in ("identity", "bernoulli-qsgd"):
        for attack in ("none", "gaussian", "negative-update"):
            cfg = fedcure_config(attack, rounds, compressor=compressor)
            start = time.perf_counter()
            gaps = fedcure_gap(cfg, "inprocess")
            hit = first_below(gaps, 1e-2)
            print(f"| {compressor} | {attack} | {cfg.beta:.2f} | {gaps[-1]:.2e} | {min(gaps):.2e} | "
                  f"{'-' if hit is None else hit} | {time.perf_counter() - start:.1f} |", flush=True)


SECTIONS = {"least-squares": section_least_squares, "c-rsa": section_c_rsa, "fed-cure": section_fed_cure}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller problems and fewer rounds")
    parser.add_argument("--only", nargs="*", choices=sorted(SECTIONS), help="run only these sections")
    parser.add_argument("--engine", choices=("inprocess", "ray"), default="inprocess",
                        help="where the c-rsa runs execute (default: in this process)")
    parser.add_argument("--ls-rounds", type=int, default=None, help="least-squares rounds")
    parser.add_argument("--crsa-rounds", type=int, default=None, help="c-rsa comparison rounds")
    parser.add_argument("--fc-rounds", type=int, default=None, help="fed-cure rounds")
    args = parser.parse_args()
    for name in args.only or SECTIONS:
        SECTIONS[name](args)


if __name__ == "__main__":
    main()
