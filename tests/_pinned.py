"""Final models of small fixed runs, as SHA-256 digests of their float32 bytes.

``python tests/_pinned.py`` prints the digests of the current code; ``tests/test_pinned_models.py``
compares against the values recorded there. A refactoring that claims to change no arithmetic
must leave every digest as it is.

Last bits depend on the CPU: torch picks its vectorised kernels (ATen's AVX2 or AVX-512 builds)
and MKL its GEMM code path by what the processor offers, and the kernels sum in different orders.
Digests recorded on one x86-64 machine therefore differ on another. The digests are computed, and
were recorded, in a child process started with ``PORTABLE_ENV``: ATen's scalar kernels, MKL's
conditional-numerical-reproducibility mode ``COMPATIBLE``, oneDNN capped at SSE4.1, numba
compiling for a generic CPU, and one thread. ``python tests/_pinned.py`` starts that child itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

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


MESSAGE_RUNS = ("bgmd", "krum", "c-rsa")

# The same kernels, in the same summation order, on every x86-64 processor (see the module docstring).
PORTABLE_ENV = {
    "ATEN_CPU_CAPABILITY": "default",
    "MKL_CBWR": "COMPATIBLE",
    "ONEDNN_MAX_CPU_ISA": "SSE41",
    "NUMBA_CPU_NAME": "generic",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


def all_digests() -> dict:
    """Every digest of the current code, in this process (see ``portable_digests``)."""
    from fedrobust.aggregators import _sortnet

    out = {name: final_model(run_config(name)) for name in RUNS}
    out.update({f"message:{name}": final_model(run_config(name, api="message")) for name in MESSAGE_RUNS})
    out.update({f"plugin:{name}": value for name, value in plugin_models().items()})
    return {"digests": out, "have_numba": _sortnet.HAVE_NUMBA}


def portable_digests() -> dict:
    """``all_digests`` computed in a child process started with ``PORTABLE_ENV``."""
    env = {**os.environ, **PORTABLE_ENV}
    here = os.path.dirname(os.path.abspath(__file__))
    done = subprocess.run(
        [sys.executable, os.path.join(here, "_pinned.py"), "--child"], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the pinned runs failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        print(json.dumps(all_digests()))
    else:
        for key, value in portable_digests()["digests"].items():
            print(f'    "{key}": "{value}",')
