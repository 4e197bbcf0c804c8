"""`fedrobust sweep`: grid expansion and validation, cell ids, resume without recomputing, the CLI."""

import json
from pathlib import Path

import pytest

from _records import untimed
from fedrobust import grids, sweep
from fedrobust.cli import main
from fedrobust.config import ConfigError, RunConfig
from fedrobust.experiments.report import write_report
from fedrobust.core.results import RoundRecord
from fedrobust.experiments.sweep import cell_id, expand_grid, load_grid, read_sweep, run_sweep

# digits loads in milliseconds, so the preflight check costs nothing here.
GRID = {"strategy": ["mean-sgd", "gmd"], "seed": [0, 1], "dataset": "digits", "num-clients": 3,
        "clients-per-round": 2, "rounds": 2}


def fake_results(cfg):
    rounds = [{"round": r, "accuracy": 0.5 + 0.1 * r, "loss": 1.0 / r, "bytes_up": 100, "round_seconds": 0.1}
              for r in range(1, cfg.rounds + 1)]
    return {"config": cfg.to_dict(), "initial": {}, "rounds": rounds}


class Runner:
    """A cell runner that records what it ran; raises ``interrupt_at`` on that call (1-based)."""

    def __init__(self, interrupt_at=None, fail_strategy=None):
        self.ran, self.interrupt_at, self.fail_strategy = [], interrupt_at, fail_strategy

    def __call__(self, cfg, on_round):
        if len(self.ran) + 1 == self.interrupt_at:
            raise KeyboardInterrupt
        if cfg.strategy == self.fail_strategy:
            raise RuntimeError("boom")
        self.ran.append(cell_id(cfg))
        results = fake_results(cfg)
        for r in results["rounds"]:
            on_round(RoundRecord(round=r["round"], accuracy=r["accuracy"], loss=r["loss"]))
        return results


def lines(tmp_path):
    return (tmp_path / "results.jsonl").read_text().splitlines()


def test_lists_are_axes_scalars_are_fixed_and_the_last_axis_varies_fastest():
    cells = expand_grid({"attack": ["none", "bit-flip"], "byzantine-fraction": [0.0, 0.2], "lr": 0.3})
    assert [(c.attack, c.byzantine_fraction) for c in cells] == [
        ("none", 0.0), ("none", 0.2), ("bit-flip", 0.0), ("bit-flip", 0.2)]
    assert {c.lr for c in cells} == {0.3}
    assert [c.seed for c in expand_grid({"seed": [3, 1, 2]})] == [3, 1, 2]
    assert len(expand_grid({})) == 1  # no axis: one cell of defaults


def test_every_bad_cell_and_value_is_reported_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError) as exc:
        expand_grid({"strategy": ["bgmd", "nope"], "lr": [0.1, -1.0]})
    err = str(exc.value).splitlines()
    assert len(err) == 2
    assert err[0] == "cell strategy='bgmd', lr=-1.0: lr must be > 0, got -1.0"
    assert err[1].startswith("cell strategy='nope', lr=0.1: strategy must be one of")
    with pytest.raises(ConfigError, match="unknown key 'seeds'"):
        expand_grid({"seeds": [0, 1]})
    with pytest.raises(ConfigError) as exc:
        expand_grid({"rounds": [], "seed": [1, 1], "output": "x.json", "model": {"a": 1}})
    assert len(str(exc.value).splitlines()) == 4
    runner = Runner()
    with pytest.raises(ConfigError):
        run_sweep({**GRID, "lr": [0.1, 0]}, tmp_path, run_cell=runner, progress=False)
    assert runner.ran == [] and not (tmp_path / "results.jsonl").exists()


def test_the_preflight_catches_cells_that_cannot_run_here_before_any_runs(tmp_path):
    runner = Runner()
    with pytest.raises(ConfigError, match="data-dir is required"):
        run_sweep({"dataset": ["digits", "mnist"], "num-clients": 3, "clients-per-round": 2}, tmp_path,
                  run_cell=runner, progress=False)
    assert runner.ran == []


def test_load_grid_reads_toml_and_names_the_file_when_it_is_not_toml(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text('strategy = ["bgmd", "gmd"]\nbyzantine-fraction = 0.2\nseed = [0, 1]\n')
    assert load_grid(path) == {"strategy": ["bgmd", "gmd"], "byzantine-fraction": 0.2, "seed": [0, 1]}
    path.write_text("strategy = [")
    with pytest.raises(ConfigError, match="grid.toml: not valid TOML"):
        load_grid(path)


def test_cell_id_depends_on_every_setting_but_not_on_placement_or_new_default_keys():
    cfg = RunConfig(strategy="bgmd", seed=1)
    assert cell_id(cfg) == cell_id(RunConfig.from_mapping({"seed": 1, "strategy": "bgmd"}))
    assert cell_id(cfg) == cell_id(cfg.replace(output="elsewhere.json", api="message", num_cpus=2.0,
                                               round_timeout=5.0, checkpoint_dir="ck", data_dir="data",
                                               device="cpu"))
    assert cell_id(cfg) == cell_id(cfg.replace(rounds=RunConfig().rounds))  # a key at its default counts as unset
    assert cell_id(cfg) != cell_id(cfg.replace(rounds=RunConfig().rounds + 1))
    assert len({cell_id(cfg), cell_id(cfg.replace(seed=2)), cell_id(cfg.replace(rho=0.2)),
                cell_id(cfg.replace(gm_tol=1e-6))}) == 4


def test_an_interrupted_sweep_resumes_and_never_recomputes_a_finished_cell(tmp_path):
    first = Runner(interrupt_at=2)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(GRID, tmp_path, run_cell=first, progress=False)
    assert len(first.ran) == 1 and len(lines(tmp_path)) == 1

    second = Runner()
    summary = run_sweep(GRID, tmp_path, run_cell=second, progress=False)
    assert (summary.cells, summary.skipped, summary.ran, summary.failed) == (4, 1, 3, {})
    assert first.ran[0] not in second.ran and len(set(first.ran + second.ran)) == 4
    records = read_sweep(tmp_path)
    assert sorted(r["cell"] for r in records) == sorted(cell_id(c) for c in expand_grid(GRID))
    assert all(r["num_classes"] == 10 and r["config"]["dataset"] == "digits" for r in records)
    assert records[0]["results"]["rounds"][-1]["round"] == 2

    third = Runner()
    assert run_sweep(GRID, tmp_path, run_cell=third, progress=False).skipped == 4 and third.ran == []
    bigger = Runner()  # a grown grid runs only its new cells
    assert run_sweep({**GRID, "seed": [0, 1, 2]}, tmp_path, run_cell=bigger, progress=False).ran == 2
    assert len(bigger.ran) == 2 and len(lines(tmp_path)) == 6


def test_a_cut_short_last_line_is_ignored_and_repaired(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run_sweep(GRID, tmp_path, run_cell=Runner(interrupt_at=3), progress=False)
    path = tmp_path / "results.jsonl"
    whole = path.read_text()
    path.write_text(whole + '{"cell": "abc", "config": {"stra')  # killed while writing the third
    assert len(read_sweep(tmp_path)) == 2
    runner = Runner()
    assert run_sweep(GRID, tmp_path, run_cell=runner, progress=False).ran == 2
    assert len(lines(tmp_path)) == 4 and all(json.loads(line)["cell"] != "abc" for line in lines(tmp_path))

    path.write_text(whole.rstrip("\n"))  # a complete last record without its newline is kept
    assert run_sweep(GRID, tmp_path, run_cell=Runner(), progress=False).skipped == 2
    assert len(lines(tmp_path)) == 4


def test_a_malformed_line_before_the_last_is_an_error(tmp_path):
    run_sweep(GRID, tmp_path, run_cell=Runner(), progress=False)
    path = tmp_path / "results.jsonl"
    body = path.read_text().splitlines()
    path.write_text("\n".join([body[0], "garbage", *body[1:]]) + "\n")
    with pytest.raises(ValueError, match="results.jsonl:2: malformed record"):
        read_sweep(tmp_path)


def test_a_failing_cell_is_reported_left_out_and_retried_by_the_next_run(tmp_path):
    summary = run_sweep(GRID, tmp_path, run_cell=Runner(fail_strategy="gmd"), progress=False)
    assert summary.ran == 2 and len(summary.failed) == 2
    assert all(m == "RuntimeError: boom" for m in summary.failed.values())
    retry = Runner()
    assert run_sweep(GRID, tmp_path, run_cell=retry, progress=False).ran == 2
    assert sorted(retry.ran) == sorted(summary.failed)


def test_the_cli_sweeps_with_a_progress_bar_resumes_and_reports(tmp_path, monkeypatch, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text('strategy = ["mean-sgd", "gmd"]\nseed = [0, 1]\ndataset = "digits"\n'
                    "num-clients = 3\nclients-per-round = 2\nrounds = 2\n")
    out = tmp_path / "sweep"
    monkeypatch.setattr(sweep, "simulate_cell", Runner(interrupt_at=2))
    assert main(["sweep", str(grid), "--output", str(out)]) == 130
    assert "rerun to resume" in capsys.readouterr().err
    runner = Runner()
    monkeypatch.setattr(sweep, "simulate_cell", runner)
    assert main(["sweep", str(grid), "--output", str(out)]) == 0
    captured = capsys.readouterr()
    assert "4 cells: 1 already done, 3 run, 0 failed" in captured.out and "4/4" in captured.out
    assert len(runner.ran) == 3
    assert main(["report", str(out), "--output", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "report.md").exists()


def test_cli_grid_mistakes_print_one_line_each_and_exit_2(tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text('strategy = ["bgmd", "nope"]\noutput = "x.json"\n')
    assert main(["sweep", str(grid), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fedrobust: error: output: not a grid key")
    assert main(["sweep", str(tmp_path / "missing.toml"), "--output", str(tmp_path / "out")]) == 2
    assert "missing.toml" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "empty"), "--output", str(tmp_path / "r")]) == 2
    assert "no finished cells" in capsys.readouterr().err


@pytest.mark.slow
def test_a_real_two_cell_sweep_on_the_simulation_engine_then_its_report(tmp_path):
    grid = {"strategy": ["mean-sgd", "bgmd"], "num-clients": 4, "clients-per-round": 4, "rounds": 3,
            "lr": 0.3, "batch-size": 64, "device": "cpu"}
    summary = run_sweep(grid, tmp_path / "sweep", progress=False)
    assert (summary.ran, summary.failed) == (2, {})
    records = read_sweep(tmp_path / "sweep")
    assert [r["config"]["strategy"] for r in records] == ["mean-sgd", "bgmd"]
    for r in records:
        assert len(r["results"]["rounds"]) == 3 and r["num_classes"] == 10
        assert r["results"]["rounds"][-1]["accuracy"] > 0.2  # learning after 3 rounds (chance: 0.1)
    assert "relative_residual" in records[1]["results"]["rounds"][0]
    assert run_sweep(grid, tmp_path / "sweep", progress=False).skipped == 2  # no Ray needed to resume
    written = write_report(tmp_path / "sweep", tmp_path / "report")
    assert any(p.name.endswith("residual-vs-round.png") for p in written)
    # The in-process engine runs the same strategy and clients: the same curves, up to float
    # summation order (the Ray actors' torch thread counts differ from this process's).
    assert main(["sweep", "--quiet", "--engine", "inprocess", str(_toml(tmp_path / "grid.toml", grid)),
                 "--output", str(tmp_path / "inprocess")]) == 0
    for ray_run, local_run in zip(records, read_sweep(tmp_path / "inprocess"), strict=True):
        assert ray_run["cell"] == local_run["cell"]
        for a, b in zip(ray_run["results"]["rounds"], local_run["results"]["rounds"], strict=True):
            assert a["bytes_up"] == b["bytes_up"] and a["loss"] == pytest.approx(b["loss"], rel=1e-3)


def _toml(path, grid):
    path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in grid.items()))
    return path


def test_the_inprocess_engine_runs_real_cells_without_ray_and_resumes(tmp_path, capsys):
    grid = _toml(tmp_path / "grid.toml", {**GRID, "seed": 0, "rounds": 2})
    out = tmp_path / "sweep"
    assert main(["sweep", "--quiet", "--engine", "inprocess", str(grid), "--output", str(out)]) == 0
    records = read_sweep(out)
    assert [r["config"]["strategy"] for r in records] == ["mean-sgd", "gmd"]
    assert all([x["round"] for x in r["results"]["rounds"]] == [1, 2] for r in records)
    assert all(r["results"]["rounds"][-1]["num_clients"] == 2 for r in records)
    capsys.readouterr()
    assert main(["sweep", "--engine", "inprocess", str(grid), "--output", str(out)]) == 0
    assert "2 cells: 2 already done, 0 run, 0 failed" in capsys.readouterr().out


@pytest.mark.parametrize("name", grids.names())
def test_every_shipped_grid_expands_to_valid_cells(name):
    assert grids.resolve(name).is_file()
    cells = expand_grid(load_grid(name))
    assert cells and len({cell_id(c) for c in cells}) == len(cells)


@pytest.mark.parametrize("key, values", [("api", ["legacy", "message"]), ("round-timeout", [0.0, 30.0]),
                                         ("max-server-memory-mb", [0, 100]), ("device", ["cpu", "auto"])])
def test_an_axis_over_a_placement_key_is_refused_not_collapsed_into_one_cell(key, values, tmp_path):
    runner = Runner()
    with pytest.raises(ConfigError) as exc:
        run_sweep({**GRID, key: values}, tmp_path, run_cell=runner, progress=False)
    (line,) = str(exc.value).splitlines()
    assert line.startswith(f"{key}: a placement key (how a run executes, not what it computes) cannot be an axis")
    assert runner.ran == []
    assert len(expand_grid({**GRID, key: values[:1]})) == 4  # one value is fine


def test_two_cells_that_are_the_same_run_are_refused():
    with pytest.raises(ConfigError) as exc:
        expand_grid({"lr": [1, 1.0], "seed": [0, 1]})
    assert str(exc.value).splitlines() == [
        "cell lr=1.0, seed=0: the same run as cell lr=1, seed=0 (the values are equal once read)",
        "cell lr=1.0, seed=1: the same run as cell lr=1, seed=1 (the values are equal once read)",
    ]


@pytest.mark.parametrize("damage", [lambda r: r.pop("results"), lambda r: r["results"]["rounds"][0].update(loss="x")])
def test_a_malformed_record_does_not_count_as_done_and_its_cell_runs_again(tmp_path, capsys, damage):
    run_sweep(GRID, tmp_path, run_cell=Runner(), progress=False)
    path = tmp_path / "results.jsonl"
    body = [json.loads(line) for line in lines(tmp_path)]
    damage(body[1])
    path.write_text("".join(json.dumps(r) + "\n" for r in body))
    with pytest.raises(ValueError, match=rf"results.jsonl:2: cell {body[1]['cell']}: "):
        read_sweep(tmp_path)
    runner = Runner()
    summary = run_sweep(GRID, tmp_path, run_cell=runner, progress=False)
    assert (summary.skipped, summary.ran) == (3, 1) and runner.ran == [body[1]["cell"]]
    assert f"cell {body[1]['cell']}: its record on {path}:2 is malformed" in capsys.readouterr().err
    assert sorted(r["cell"] for r in read_sweep(tmp_path)) == sorted(cell_id(c) for c in expand_grid(GRID))
    assert run_sweep(GRID, tmp_path, run_cell=Runner(), progress=False).skipped == 4


def test_sub_grids_share_the_top_level_and_run_a_shared_cell_once():
    grid = {"strategy": "gmd", "rounds": 2, "grid": [
        {"attack": "none", "byzantine-fraction": 0.0},
        {"attack": ["alie", "ipm"], "byzantine-fraction": [0.0, 0.2]},
        {"attack": "none", "byzantine-fraction": 0.0},  # the same cell as the first sub-grid's
    ]}
    cells = expand_grid(grid)
    assert [(c.attack, c.byzantine_fraction) for c in cells] == [
        ("none", 0.0), ("alie", 0.0), ("alie", 0.2), ("ipm", 0.0), ("ipm", 0.2)]
    assert {c.rounds for c in cells} == {2}
    with pytest.raises(ConfigError, match="grid 2: .*lr must be > 0"):
        expand_grid({"grid": [{"lr": 0.1}, {"lr": -1.0}]})
    with pytest.raises(ConfigError, match="array of tables"):
        expand_grid({"grid": [1, 2]})


def test_a_tuned_grid_needs_tuned_axes_and_a_validation_split(tmp_path):
    from fedrobust.experiments.sweep import tuned_axes

    assert tuned_axes({"tuned": ["lr"], "lr": [0.3, 0.1]}) == {"lr": [0.3, 0.1]}
    with pytest.raises(ConfigError, match="does not set 'client-momentum'"):
        tuned_axes({"tuned": ["client-momentum"], "lr": [0.1]})
    with pytest.raises(ConfigError, match="not a run key"):
        tuned_axes({"tuned": ["learning-rate"], "lr": [0.1]})
    with pytest.raises(ConfigError, match="cannot be tuned"):
        tuned_axes({"tuned": ["seed"], "seed": [0, 1]})
    with pytest.raises(ConfigError, match="validation-size > 0"):
        run_sweep({**GRID, "tuned": ["lr"], "lr": [0.1, 0.3]}, tmp_path, run_cell=Runner(), progress=False)
    assert not (tmp_path / "results.jsonl").exists()


def test_an_interrupted_tuned_sweep_resumes_without_recomputing_and_keeps_its_tuning(tmp_path):
    from fedrobust.experiments.sweep import TUNING_FILE, read_tuning

    grid = {**GRID, "tuned": ["lr"], "lr": [0.1, 0.3], "validation-size": 20}
    first = Runner(interrupt_at=3)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(grid, tmp_path, run_cell=first, progress=False)
    assert read_tuning(tmp_path) == {"lr": [0.1, 0.3]} and len(first.ran) == 2
    second = Runner()
    summary = run_sweep(grid, tmp_path, run_cell=second, progress=False)
    assert (summary.cells, summary.skipped, summary.ran) == (8, 2, 6)
    assert not set(first.ran) & set(second.ran)
    # A grown tuned axis keeps the earlier candidates first (the report's tie-break order).
    grown = Runner()
    assert run_sweep({**grid, "lr": [0.3, 1.0, 0.1]}, tmp_path, run_cell=grown, progress=False).ran == 4
    assert read_tuning(tmp_path) == {"lr": [0.1, 0.3, 1.0]}
    # A grid that tunes other axes, or none, is refused before it runs, and the file stays.
    for other in ({**GRID, "validation-size": 20}, {**grid, "tuned": ["rho"], "rho": [0.1, 0.2]}):
        refused = Runner()
        with pytest.raises(ConfigError, match=r"holds a sweep with tuned = \['lr'\]"):
            run_sweep(other, tmp_path, run_cell=refused, progress=False)
        assert refused.ran == [] and (tmp_path / TUNING_FILE).exists()
    assert len(lines(tmp_path)) == 12


def failing_on_gmd(cfg, on_round):
    """A module-level cell runner (worker processes import it by name) that fails gmd's cells."""
    if cfg.strategy == "gmd":
        raise RuntimeError("boom")
    return fake_results(cfg)


def reporting_handover(cfg, on_round):
    """A module-level cell runner that reports whether its worker holds exactly the cell's data
    from the sweep's hand-over (one hand-over at a time), and the folder its file lies in."""
    from fedrobust.run import build, handover

    results = fake_results(cfg)
    results["handed"] = set(build._handed) == set(build.handed_keys(cfg)) and len(handover._taken) == 1
    results["folder"] = str(Path(next(iter(handover._taken))).parent.parent) if handover._taken else None
    return results


@pytest.mark.slow
def test_parallel_jobs_take_the_cells_data_over_from_the_sweep(tmp_path, monkeypatch):
    import tempfile

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the sweep's hand-over folder goes
    summary = run_sweep(GRID, tmp_path / "out", run_cell=reporting_handover, progress=False, jobs=2)
    assert summary.ran == 4
    records = read_sweep(tmp_path / "out")
    assert [r["results"]["handed"] for r in records] == [True] * 4  # two seeds: two data settings
    assert {Path(r["results"]["folder"]).parent for r in records} == {scratch}
    assert list(scratch.iterdir()) == []  # the folder is gone after the sweep


@pytest.mark.slow
def test_parallel_jobs_write_the_same_records_in_the_same_order_as_one_job(tmp_path):
    from fedrobust.experiments.sweep import ENGINES

    grid = {**GRID, "attack": "alie", "byzantine-fraction": 0.34, "num-clients": 3, "clients-per-round": 3}

    def records(folder):
        return [(r["cell"], r["num_classes"], untimed(r["results"]["rounds"])) for r in read_sweep(folder)]

    one = run_sweep(grid, tmp_path / "one", run_cell=ENGINES["inprocess"], progress=False)
    two = run_sweep(grid, tmp_path / "two", run_cell=ENGINES["inprocess"], progress=False, jobs=2)
    assert (one.ran, two.ran) == (4, 4)
    assert records(tmp_path / "one") == records(tmp_path / "two")
    # A failing cell is reported and left out; the others are written, in order; a rerun retries it.
    summary = run_sweep(GRID, tmp_path / "fail", run_cell=failing_on_gmd, progress=False, jobs=2)
    assert summary.ran == 2 and len(summary.failed) == 2
    assert [r["config"]["strategy"] for r in read_sweep(tmp_path / "fail")] == ["mean-sgd", "mean-sgd"]
    assert run_sweep(GRID, tmp_path / "fail", run_cell=failing_on_gmd, progress=False, jobs=2).skipped == 2


def test_jobs_are_checked_and_need_the_in_process_engine(tmp_path):
    with pytest.raises(ConfigError, match="jobs must be an integer >= 1"):
        run_sweep(GRID, tmp_path, run_cell=Runner(), progress=False, jobs=0)
    with pytest.raises(ConfigError, match="Ray engine runs one cell at a time"):
        run_sweep(GRID, tmp_path, progress=False, jobs=2)
    assert not (tmp_path / "results.jsonl").exists()


def test_max_cells_runs_the_first_unfinished_cells_and_a_rerun_the_rest(tmp_path):
    runner = Runner()
    first = run_sweep(GRID, tmp_path, run_cell=runner, progress=False, max_cells=3)
    assert (first.cells, first.skipped, first.ran, first.left) == (4, 0, 3, 1)
    order = [cell_id(c) for c in expand_grid(GRID)]
    assert runner.ran == order[:3]
    second = run_sweep(GRID, tmp_path, run_cell=runner, progress=False, max_cells=3)
    assert (second.skipped, second.ran, second.left) == (3, 1, 0) and runner.ran == order
    with pytest.raises(ConfigError, match="max-cells must be an integer >= 1, got 0"):
        run_sweep(GRID, tmp_path, run_cell=runner, progress=False, max_cells=0)


def test_a_shipped_grid_is_swept_by_name_and_an_unknown_name_lists_them(tmp_path, capsys, monkeypatch):
    ran = []
    monkeypatch.setitem(sweep.ENGINES, "inprocess", lambda cfg, on_round: ran.append(cfg) or fake_results(cfg))
    assert main(["sweep", "demo", "--engine", "inprocess", "--output", str(tmp_path), "--max-cells", "1",
                 "--quiet"]) == 0
    assert [(c.strategy, c.attack, c.byzantine_fraction) for c in ran] == [("fedavg", "bit-flip", 0.0)]
    assert main(["sweep", "no-such-grid", "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fedrobust: error: no-such-grid: no such file, and no grid of that name ships") and "demo" in err
