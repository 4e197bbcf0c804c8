"""scripts/bench_simulation.py: a smoke run, its per-round breakdown, and seeded client sampling at scale."""

import importlib.util
import sys
from pathlib import Path

import pytest

from fedrobust.strategies import select_partitions

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return _load("bench_simulation")


def test_baselines_are_the_mean_aggregating_strategy_of_the_same_client_work(bench):
    assert [bench.baseline_of(s) for s in ("mean-sgd", "bgmd", "c-rsa", "norm-threshold", "fedavg", "fl-bgmd")] == [
        "mean-sgd", "mean-sgd", "mean-sgd", "mean-sgd", "fedavg", "fedavg"
    ]


def test_quick_run_prints_the_table_and_the_parts_add_up(bench, capsys):
    out = bench.main(["--quick", "--track-memory"])
    text = capsys.readouterr().out
    assert (
        "| strategy | s/round | vs baseline | server vs baseline | clients vs baseline | configure | clients | stack "
        "| aggregate | evaluate | engine |"
    ) in text
    assert "| mean-sgd |" in text and "| baseline |" in text and "| trimmed-mean |" in text
    for name in ("mean-sgd", "trimmed-mean"):
        rows = out["rounds"][name]
        assert len(rows) == 1  # 2 rounds, the first a warm-up
        for row in rows:
            assert row["round"] > 0 and row["clients"] > 0 and row["aggregate"] > 0 and row["stack"] > 0
            assert abs(sum(row[p] for p in bench.PARTS) - row["round"]) < 1e-9
        assert out["memory"][name]["server_peak_mb"] > 100 and out["memory"][name]["tree_peak_mb"] > 100


def test_sampling_of_1000_clients_is_seeded_and_changes_with_round_and_seed():
    first = select_partitions(1000, 100, seed=0, server_round=1)
    assert first == select_partitions(1000, 100, seed=0, server_round=1)
    assert len(set(first)) == 100 and all(0 <= p < 1000 for p in first)
    assert first != select_partitions(1000, 100, seed=0, server_round=2)
    assert first != select_partitions(1000, 100, seed=1, server_round=1)
    # over many rounds every client gets its turn about equally often
    counts = [0] * 1000
    for r in range(1, 201):
        for p in select_partitions(1000, 100, seed=0, server_round=r):
            counts[p] += 1
    assert min(counts) >= 5 and max(counts) <= 40  # mean 20
