"""Torch's thread count: the in-process engines run clients at ``client-threads`` and the server at the
process's own count; numba's thread pool leaves it alone."""

import os
import subprocess
import sys

import pytest
import torch

from fedrobust.aggregators._sortnet import HAVE_NUMBA
from fedrobust.clients.gradient import GradientClient
from fedrobust.config import RunConfig
from fedrobust.core.threads import kept_torch_threads
from fedrobust.run.inprocess import run_inprocess


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_kept_torch_threads_puts_the_count_back_after_a_raise(two_threads):
    with pytest.raises(RuntimeError), kept_torch_threads():
        torch.set_num_threads(1)
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("api", ["legacy", "message"])
def test_clients_compute_at_client_threads_and_the_server_at_its_own(two_threads, monkeypatch, api):
    seen = {"client": set(), "server": set()}
    fit = GradientClient.fit

    def observed(self, parameters, config):
        seen["client"].add(torch.get_num_threads())
        return fit(self, parameters, config)

    monkeypatch.setattr(GradientClient, "fit", observed)
    cfg = RunConfig(strategy="mean-sgd", dataset="digits", model="logistic", num_clients=3, clients_per_round=3,
                    rounds=2, device="cpu", api=api, client_threads=1)
    run_inprocess(cfg, after_round=lambda strategy, rnd: seen["server"].add(torch.get_num_threads()), warn=False)
    assert seen == {"client": {1}, "server": {2}}
    assert torch.get_num_threads() == 2


def _fresh_process(code: str, **env: str) -> str:
    """``code``'s output in a new interpreter (numba's thread pool not started yet), with ``env`` added."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120,
                          env={**os.environ, **env}).stdout


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba's kernels (the 'fast' extra)")
def test_numbas_first_kernel_leaves_torchs_thread_count_alone():
    """Starting numba's pool set OpenMP's thread count, torch's with it, to every core (seen in the
    single-threaded child of tests/_pinned.py, whose GM digests then moved)."""
    out = _fresh_process(
        "import torch\nfrom fedrobust.aggregators import trimmed_mean\n"
        "trimmed_mean(torch.randn(10, 50_000), 0.2)\nprint(torch.get_num_threads())", OMP_NUM_THREADS="1"
    )
    assert out.split() == ["1"]

