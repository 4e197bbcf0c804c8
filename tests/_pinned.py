"""Final models of small fixed runs, as SHA-256 digests of their float32 bytes.

``python tests/_pinned.py`` prints the digests of the current code; ``tests/test_pinned_models.py``
compares against the values recorded there. A refactoring that claims to change no arithmetic
must leave every digest as it is.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from fedrobust.config import RunConfig
from fedrobust.run.inprocess import run_inprocess

# strategy -> extra run keys; every run: digits / logistic, 6 clients, 3 rounds, bit-flip on 1 client.
RUNS: dict[str, dict] = {
    "mean-sgd": {},
    "fedavg": {},
    "gmd": {},
    "cmd": {},
    "trimmed-mean": {},
    "krum": {},
    "bgmd": {"rho": 0.3},
    "fl-bgmd": {"rho": 0.3},
    "qbgmd": {"rho": 0.3},
    "norm-threshold": {},
    "norm-threshold-ef": {},
    "c-rsa": {},
    "rsa": {},
    "fed-cure": {},
    "signsgd-mv": {},
    "fltrust": {},
}


def _server_update(global_arrays, server_round):
    """The plugin FLTrust's server update on the fixed deltas: the honest mean delta, 0.1 everywhere."""
    return [np.full_like(a, 0.1) for a in global_arrays]


# Plugin rule -> constructor arguments (the rest take none).
PLUGIN_PARAMS: dict[str, dict] = {"bgmd": {"rho": 0.3}, "fltrust": {"server_update_fn": _server_update}}


def digest(x: torch.Tensor | np.ndarray) -> str:
    array = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.float32).tobytes()).hexdigest()[:16]


def run_config(strategy: str, api: str = "legacy") -> RunConfig:
    return RunConfig(
        strategy=strategy, dataset="digits", model="logistic", num_clients=6, clients_per_round=6, rounds=3, lr=0.1,
        attack="bit-flip", byzantine_fraction=0.2, device="cpu", api=api, **RUNS[strategy],
    )


def final_model(cfg: RunConfig) -> str:
    seen: dict[str, torch.Tensor] = {}
    run_inprocess(cfg, after_round=lambda s, r: seen.__setitem__("x", s.x.clone()))
    return digest(seen["x"])


def plugin_models() -> dict[str, str]:
    """Five rounds of each plugin rule on fixed deltas (8 honest, 2 attackers at -100x)."""
    from fedrobust.plugin import RULES, WeightsAggregator

    out = {}
    for name in sorted(RULES):
        aggregator = WeightsAggregator(RULES[name](**PLUGIN_PARAMS.get(name, {})))
        x = [np.linspace(-1, 1, 60, dtype=np.float32).reshape(6, 10), np.zeros(10, np.float32)]
        rng = np.random.default_rng(0)
        for rnd in range(1, 6):
            replies = [[a + rng.normal(0.1, 0.05, a.shape).astype(np.float32) for a in x] for _ in range(8)]
            replies += [[a - 100 * (r[i] - a) for i, a in enumerate(x)] for r in replies[:2]]
            result = aggregator.aggregate(rnd, x, replies)
            x = result.arrays if result.arrays is not None else x
        out[name] = digest(np.concatenate([a.reshape(-1) for a in x]))
    return out


if __name__ == "__main__":
    for name in RUNS:
        print(f'    "{name}": "{final_model(run_config(name))}",')
    for name in ("bgmd", "krum", "c-rsa"):
        print(f'    "message:{name}": "{final_model(run_config(name, api="message"))}",')
    for name, value in plugin_models().items():
        print(f'    "plugin:{name}": "{value}",')
