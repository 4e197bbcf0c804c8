"""The ``tensorboard`` run key: per-round metrics as TensorBoard event files, next to the results.

The runs are tiny (digits, 3 clients, 2-3 rounds, the in-process engine); the one through Flower's
Ray engine is marked ``slow``. Tests that read event files back need the ``tensorboard`` package
(``pip install 'fedrobust[tensorboard]'``) and are skipped without it.
"""

import importlib.util
import sys
import threading

import pytest

import fedrobust
from fedrobust.config import ConfigError, RunConfig, placement_keys
from fedrobust.core.results import read_results
from fedrobust.experiments.sweep import cell_id, inprocess_cell, read_sweep, run_sweep
from fedrobust.run.inprocess import run_inprocess
from fedrobust.run.simulation import check_runnable
from fedrobust.run.tensorboard_log import TensorBoardLog, scalar_tags
from fedrobust.strategies import VectorStrategy

HAS_TENSORBOARD = importlib.util.find_spec("tensorboard") is not None
needs_tensorboard = pytest.mark.skipif(
    not HAS_TENSORBOARD, reason="reads event files back: needs pip install 'fedrobust[tensorboard]'"
)

SMALL = dict(strategy="mean-sgd", dataset="digits", num_clients=3, clients_per_round=3, device="cpu")


def scalars(folder):
    """Tag -> [(step, value)] of the event files in ``folder``, as TensorBoard reads them."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = EventAccumulator(str(folder))
    board.Reload()
    return {tag: [(e.step, e.value) for e in board.Scalars(tag)] for tag in board.Tags()["scalars"]}


def curve(results, field="accuracy"):
    """[(step, value)] of ``field`` in a results document: ``initial`` at step 0, then every round."""
    start = [(0, results["initial"][field])] if field in results["initial"] else []
    return start + [(r["round"], r[field]) for r in results["rounds"]]


def assert_same_curve(written, expected):
    assert [step for step, _ in written] == [step for step, _ in expected]
    # TensorBoard stores scalars as float32.
    assert [value for _, value in written] == pytest.approx([value for _, value in expected], rel=1e-6)


def test_record_fields_become_grouped_tags():
    record = {"round": 2, "accuracy": 0.5, "loss": 1.25, "val_accuracy": 0.4, "val_loss": 1.5, "bytes_up": 80,
              "bytes_down": 160, "round_seconds": 0.1, "aggregation_seconds": 0.01, "num_clients": 3,
              "rejected_clients": 1, "failed_clients": 0, "attack_success_rate": 0.2, "skipped_step": True,
              "gm_iterations": 7, "byzantine_clients": [2], "rejections": [[2, "nan"]], "note": "text"}
    assert scalar_tags(record) == {
        "test/accuracy": 0.5, "test/loss": 1.25, "val/accuracy": 0.4, "val/loss": 1.5, "comm/bytes_up": 80.0,
        "comm/bytes_down": 160.0, "time/round_seconds": 0.1, "time/aggregation_seconds": 0.01,
        "clients/num_clients": 3.0, "clients/rejected_clients": 1.0, "clients/failed_clients": 0.0,
        "test/attack_success_rate": 0.2, "server/skipped_step": 1.0, "server/gm_iterations": 7.0,
    }
    assert scalar_tags({"accuracy": None, "loss": None}) == {}


def test_tensorboard_is_a_placement_key_so_cell_ids_ignore_it():
    assert "tensorboard" in placement_keys()
    cfg = RunConfig(**SMALL)
    assert cell_id(cfg.replace(tensorboard="somewhere")) == cell_id(cfg)


def test_without_the_package_the_run_fails_with_one_line_naming_the_extra(tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboard" else real_find_spec(name, *a))
    with pytest.raises(ConfigError, match=r"pip install 'fedrobust\[tensorboard\]'") as err:
        check_runnable(RunConfig(**SMALL, rounds=2, tensorboard=str(tmp_path / "tb")))
    assert "\n" not in str(err.value)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # its import now fails
    with pytest.raises(ConfigError, match=r"^tensorboard: .*pip install 'fedrobust\[tensorboard\]'$") as err:
        TensorBoardLog(tmp_path / "tb")
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"pip install 'fedrobust\[tensorboard\]'"):  # before round 1
        run_inprocess(RunConfig(**SMALL, rounds=2, tensorboard=str(tmp_path / "tb")))
    assert not list((tmp_path / "tb").glob("*"))


@needs_tensorboard
@pytest.mark.parametrize("api", ["legacy", "message"])
def test_an_inprocess_run_writes_each_round_next_to_its_results(tmp_path, api):
    out, board = tmp_path / "run.json", tmp_path / "run.tb"
    seen = []

    def on_round(record):  # written as the round ends: the event file already holds this round
        seen.append((record.round, [step for step, _ in scalars(board)["test/accuracy"]]))

    cfg = RunConfig(**SMALL, api=api, rounds=3, validation_size=40, output=str(out), tensorboard=str(board))
    results = run_inprocess(cfg, on_round=on_round)
    assert results["rounds"] == read_results(out)["rounds"]
    assert seen == [(1, [0, 1]), (2, [0, 1, 2]), (3, [0, 1, 2, 3])]
    written = scalars(board)
    assert_same_curve(written["test/accuracy"], curve(results, "accuracy"))
    assert_same_curve(written["test/loss"], curve(results, "loss"))
    assert_same_curve(written["val/accuracy"], curve(results, "val_accuracy"))
    assert_same_curve(written["comm/bytes_up"], curve(results, "bytes_up"))
    assert_same_curve(written["time/round_seconds"], curve(results, "round_seconds"))
    assert {"clients/num_clients", "clients/rejected_clients", "server/skipped_step"} <= set(written)
    assert writer_threads() == []  # closed after the last round


def writer_threads():
    return [t for t in threading.enumerate() if type(t).__name__ == "_AsyncWriterThread" and t.is_alive()]


@needs_tensorboard
@pytest.mark.parametrize("api", ["legacy", "message"])
def test_a_failing_run_keeps_its_finished_rounds_and_closes_the_writer(tmp_path, monkeypatch, api):
    aggregate = VectorStrategy.aggregate_fit

    def fail_in_round_2(self, server_round, results, failures):
        if server_round == 2:
            raise RuntimeError("boom")
        return aggregate(self, server_round, results, failures)

    monkeypatch.setattr(VectorStrategy, "aggregate_fit", fail_in_round_2)
    with pytest.raises(RuntimeError, match="boom"):
        run_inprocess(RunConfig(**SMALL, api=api, rounds=3, tensorboard=str(tmp_path)))
    assert [step for step, _ in scalars(tmp_path)["test/accuracy"]] == [0, 1]
    assert writer_threads() == []


@needs_tensorboard
def test_a_resumed_run_adds_its_rounds_and_a_fresh_run_replaces_the_files(tmp_path):
    board = str(tmp_path / "tb")
    first = RunConfig(**SMALL, rounds=2, checkpoint_dir=str(tmp_path / "ckpt"), tensorboard=board)
    run_inprocess(first)
    resumed = run_inprocess(first.replace(rounds=3, resume=True))
    assert_same_curve(scalars(board)["test/accuracy"], curve(resumed))  # rounds 0-2, then 3: none twice
    fresh = run_inprocess(RunConfig(**SMALL, rounds=2, seed=1, tensorboard=board))
    assert_same_curve(scalars(board)["test/accuracy"], curve(fresh))  # the earlier run's files are gone
    assert len(list((tmp_path / "tb").glob("events.out.tfevents.*"))) == 1


@needs_tensorboard
def test_each_sweep_cell_writes_into_its_own_subfolder(tmp_path):
    grid = {**{k.replace("_", "-"): v for k, v in SMALL.items()}, "seed": [0, 1], "rounds": 2,
            "tensorboard": str(tmp_path / "sweep" / "tb")}
    summary = run_sweep(grid, tmp_path / "sweep", run_cell=inprocess_cell, progress=False)
    assert summary.ran == 2
    cells = read_sweep(tmp_path / "sweep")
    assert sorted(p.name for p in (tmp_path / "sweep" / "tb").iterdir()) == sorted(c["cell"] for c in cells)
    for cell in cells:
        folder = tmp_path / "sweep" / "tb" / cell["cell"]
        assert cell["config"]["tensorboard"] == str(folder)
        assert_same_curve(scalars(folder)["test/accuracy"], curve(cell["results"]))


@needs_tensorboard
@pytest.mark.slow
def test_a_ray_simulation_writes_the_same_curve(tmp_path):
    board = tmp_path / "run.tb"
    results = fedrobust.simulate(**{**SMALL, "num_clients": 2, "clients_per_round": 2}, rounds=2,
                                 output=str(tmp_path / "run.json"), tensorboard=str(board))
    assert_same_curve(scalars(board)["test/accuracy"], curve(results))
