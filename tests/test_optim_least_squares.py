"""Least-squares acceptance checks of norm-thresholding, through the simulation of
scripts/bench_least_squares.py.

The experiment is §8 of Ghosh, Maity, Kadhe, Mazumdar and Ramchandran (2021), "Communication-Efficient and
Byzantine-Robust Distributed Learning with Error Feedback".

Fast tests use a 1000 x 250 problem over 50 workers (20 rows each, the paper's rows-per-worker and
rows/d ratio); the slow test is the paper's 4000 x 1000 problem over 200 workers. Byzantine workers
add N(0, 10 I) to their gradients; compressor ``scaled-sign``; γ = 0.5; metric ‖w − w*‖ / ‖w*‖.
"""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from _strategies_ii import load_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "bench_least_squares.py"
bench = load_script(SCRIPT)


@pytest.fixture(scope="module")
def small():
    return bench.make_problem(rows=1000, d=250, workers=50)


def test_batched_scaled_sign_matches_the_compressor(small):
    """The fast path of the simulation computes exactly what the compressor's payloads carry."""
    grads = small.gradients(torch.randn(250, dtype=torch.float64))
    assert torch.allclose(bench.compress_rows(grads, exact=False), bench.compress_rows(grads, exact=True), rtol=1e-6)


@pytest.mark.parametrize("method", ["norm-threshold-opt1", "norm-threshold-ef"])
def test_exact_and_batched_simulations_agree(small, method):
    fast = bench.simulate(small, method, num_byzantine=3, beta=4 / 50, rounds=5)
    exact = bench.simulate(small, method, num_byzantine=3, beta=4 / 50, rounds=5, exact=True)
    assert fast["errors"] == pytest.approx(exact["errors"], rel=1e-4)


@pytest.mark.parametrize("method", ["norm-threshold-opt1", "norm-threshold-opt2"])
def test_norm_thresholding_converges_without_and_with_attack(small, method):
    clean = bench.simulate(small, method, num_byzantine=0, beta=4 / 50, rounds=100)
    attacked = bench.simulate(small, method, num_byzantine=3, beta=4 / 50, rounds=100)
    assert clean["final_error"] < 1e-2
    assert attacked["final_error"] < 5e-2
    assert attacked["rounds_to_threshold"] is not None  # it even reaches 1e-2 under attack


def test_plain_mean_does_not_converge_under_attack(small):
    clean = bench.simulate(small, "mean", num_byzantine=0, rounds=100)
    attacked = bench.simulate(small, "mean", num_byzantine=3, rounds=100)
    assert clean["final_error"] < 1e-2  # the attack, not the compression, is what stops it
    assert min(attacked["errors"]) > 5e-2


def test_error_feedback_reaches_the_threshold_in_fewer_rounds(small):
    for f, beta_m in [(0, 4), (3, 4)]:
        plain = bench.simulate(small, "norm-threshold-opt2", f, beta_m / 50, rounds=100)
        ef = bench.simulate(small, "norm-threshold-ef", f, beta_m / 50, rounds=100)
        assert ef["rounds_to_threshold"] < plain["rounds_to_threshold"]
        assert ef["final_error"] < 5e-2


def test_unknown_method(small):
    with pytest.raises(ValueError, match="method must be one of"):
        bench.simulate(small, "median", rounds=1)


@pytest.mark.slow
def test_paper_size_least_squares():
    """The paper's §8: A 4000 x 1000, 200 workers, 10 or 20 Byzantine, beta*m = 12 or 22."""
    problem = bench.make_problem()
    for f, beta_m in [(0, 12), (10, 12), (20, 22)]:
        runs = {m: bench.simulate(problem, m, f, beta_m / 200, rounds=100)
                for m in ("mean", "norm-threshold-opt1", "norm-threshold-opt2", "norm-threshold-ef")}
        limit = 1e-2 if f == 0 else 5e-2
        for m in ("norm-threshold-opt1", "norm-threshold-opt2", "norm-threshold-ef"):
            assert runs[m]["final_error"] < limit, (m, f, runs[m]["final_error"])
        assert runs["norm-threshold-ef"]["rounds_to_threshold"] < runs["norm-threshold-opt2"]["rounds_to_threshold"]
        if f:
            assert min(runs["mean"]["errors"]) > 1e-2


def test_bench_script_quick_prints_the_table():
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--rounds", "10"],
        capture_output=True, text=True, timeout=300, check=True,
    ).stdout
    assert "| method | byzantine | beta*m | rounds to threshold | final error | time (s) |" in out
    for method in bench.METHODS:
        assert out.count(f"| {method} |") == 3, method
