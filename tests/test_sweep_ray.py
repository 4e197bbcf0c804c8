"""Sweeps and Ray: one Ray head for a whole Ray-engine sweep; in-process cells as Ray tasks on a cluster."""

import ray
import pytest

from _records import untimed
from fedrobust.experiments.sweep import ENGINES, read_sweep, run_sweep
from fedrobust.core import ports
from fedrobust.run import ray_head

pytestmark = pytest.mark.slow

GRID = {"strategy": ["mean-sgd", "gmd"], "dataset": "digits", "num-clients": 3, "clients-per-round": 3,
        "rounds": 2, "lr": 0.3, "device": "cpu"}


def rounds_of(folder):
    """Each record's cell and per-round numbers, without the clocks."""
    return [(r["cell"], r["config"], untimed(r["results"]["rounds"])) for r in read_sweep(folder)]


def test_a_ray_engine_sweep_starts_one_head_for_all_its_cells_and_stops_it(tmp_path, monkeypatch):
    from fedrobust.run import simulation

    heads, seen = [], []
    original_head, original_simulate = ray_head.local_ray_head, simulation.simulate

    def counted(*args, **kwargs):
        heads.append(1)
        return original_head(*args, **kwargs)

    def watching(cfg, **kwargs):  # which cluster does each cell's every round run on?
        on_round = kwargs.pop("on_round")

        def during(record):
            seen.append((cfg.ray_address, ray.get_runtime_context().gcs_address.rsplit(":", 1)[1]))
            on_round(record)
        return original_simulate(cfg, on_round=during, **kwargs)

    monkeypatch.setattr(ray_head, "local_ray_head", counted)
    monkeypatch.setattr(simulation, "simulate", watching)
    summary = run_sweep(GRID, tmp_path / "head", progress=False)
    assert summary.ran == 2 and heads == [1]
    assert len(seen) == 4 and len(set(seen)) == 1 and seen[0][0].endswith(":" + seen[0][1])  # all on the head
    assert all(r["config"]["ray-address"] == "" for r in read_sweep(tmp_path / "head"))  # the cells' own keys
    assert all(r["results"]["config"]["ray-address"] == "" for r in read_sweep(tmp_path / "head"))
    assert not _head_processes()  # the head is gone
    # The same cell on its own Ray instance gives the same rounds.
    monkeypatch.setattr(simulation, "simulate", original_simulate)
    alone = run_sweep({**GRID, "strategy": "gmd"}, tmp_path / "alone", progress=False)
    assert alone.ran == 1 and heads == [1]  # one cell: no head
    assert rounds_of(tmp_path / "alone")[0] == rounds_of(tmp_path / "head")[1]


def _head_processes():
    import os

    return [pid for pid in os.listdir("/proc") if pid.isdigit() and _marked(pid)]


def _marked(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return ray_head.MARKER.encode() + b"=" in fh.read()
    except OSError:
        return False


def test_in_process_cells_run_as_ray_tasks_on_a_cluster_with_the_records_of_a_sequential_sweep(tmp_path):
    grid = {**GRID, "seed": [0, 1], "num-cpus": 1.0}
    one = run_sweep(grid, tmp_path / "one", run_cell=ENGINES["inprocess"], progress=False)
    with ray_head.local_ray_head() as address:
        tasks = run_sweep(grid, tmp_path / "tasks", run_cell=ENGINES["inprocess"], progress=False,
                          ray_address=address)
        assert not ray.is_initialized()  # the sweep detached from the cluster
    assert (one.ran, tasks.ran) == (4, 4)
    assert rounds_of(tmp_path / "one") == rounds_of(tmp_path / "tasks")


def test_the_heads_component_ports_are_never_among_its_worker_ports(monkeypatch):
    # `ray start` refuses a component port inside the worker port range (a CI run drew one there).
    low = 40_000
    draws = iter([low, low + 5, low + 200, 50_000, 50_000, 50_001, low - 1, low + 201])
    monkeypatch.setattr(ports, "_draw", lambda host: next(draws))
    assert ray_head.head_ports(4) == (low, [50_000, 50_001, low - 1, low + 201])
