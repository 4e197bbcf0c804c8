"""Torch's thread count: an in-process run computes at ``client-threads`` and gives the caller's count
back; numba's thread pool leaves it alone."""

import os
import subprocess
import sys

import pytest
import torch

from _records import untimed
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
@pytest.mark.parametrize("client_threads", [1, 0])
def test_an_inprocess_run_computes_at_client_threads_and_gives_the_count_back(two_threads, monkeypatch, api,
                                                                             client_threads):
    seen = {"client": set(), "server": set()}
    fit = GradientClient.fit

    def observed(self, parameters, config):
        seen["client"].add(torch.get_num_threads())
        return fit(self, parameters, config)

    monkeypatch.setattr(GradientClient, "fit", observed)
    cfg = RunConfig(strategy="mean-sgd", dataset="digits", model="logistic", num_clients=3, clients_per_round=3,
                    rounds=2, device="cpu", api=api, client_threads=client_threads)
    run_inprocess(cfg, after_round=lambda strategy, rnd: seen["server"].add(torch.get_num_threads()), warn=False)
    expected = client_threads or 2  # 0: the caller's count
    assert seen == {"client": {expected}, "server": {expected}}
    assert torch.get_num_threads() == 2


def test_a_sweeps_records_do_not_depend_on_the_processs_thread_count(two_threads):
    """BGMD's relative residual, a sum over the whole vector, differed in its last bit between one
    job (the server at 2 threads) and --jobs 2 (1 thread each) when the in-process server computed
    at the process's count; d must be past torch's parallel grain (32,768) to show it."""
    cfg = RunConfig(strategy="bgmd", dataset="mnist5k", model="mlp", num_clients=10, clients_per_round=10, rounds=2,
                    batch_size=64, lr=0.1, device="cpu", attack="alie", byzantine_fraction=0.2)
    records = []
    for threads in (2, 1):
        torch.set_num_threads(threads)
        records.append(untimed(run_inprocess(cfg, warn=False)["rounds"]))
    assert records[0] == records[1]
    assert all("relative_residual" in r for r in records[0])


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

