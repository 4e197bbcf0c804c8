"""Output paths that cannot be written: one error line naming the path, exit 2, before any work."""

import pytest

import fedrobust.run.simulation
import fedrobust.experiments.sweep
from fedrobust.cli import main
from fedrobust.config import ConfigError
from fedrobust.core.paths import check_output_dir, check_output_file

UNWRITABLE = "/proc/fedrobust-no-such/x"  # /proc takes no new folders, even for root


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if a run or a cell starts: the path checks must come first."""

    def refuse(*args, **kwargs):
        raise AssertionError("training started before the output path was checked")

    monkeypatch.setattr(fedrobust.run.simulation, "simulate", refuse)
    monkeypatch.setitem(fedrobust.experiments.sweep.ENGINES, "inprocess", refuse)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("fedrobust: error: ") and "Traceback" not in err[0]
    return err[0]


def test_checks_create_missing_folders_and_leave_no_probe(tmp_path):
    check_output_dir(tmp_path / "a" / "b", "output")
    check_output_file(tmp_path / "c" / "r.json", "output")
    assert (tmp_path / "a" / "b").is_dir() and not list((tmp_path / "a" / "b").iterdir())
    assert (tmp_path / "c").is_dir() and not list((tmp_path / "c").iterdir())


def test_checks_name_the_key_and_the_path(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(ConfigError, match=f"^checkpoint-dir: {afile} is a file, not a folder$"):
        check_output_dir(afile, "checkpoint-dir")
    with pytest.raises(ConfigError, match=f"^output: {tmp_path} is a folder, not a file$"):
        check_output_file(tmp_path, "output")
    with pytest.raises(ConfigError, match=f"^output: cannot write to {afile}/r.json: {afile} is a file, not a folder$"):
        check_output_file(afile / "r.json", "output")
    with pytest.raises(ConfigError, match=f"^output: cannot write to {afile}/sub/r.json: Not a directory"):
        check_output_file(afile / "sub" / "r.json", "output")


def test_run_output_that_cannot_be_written_fails_before_the_run(no_training, capsys):
    assert main(["run", "--rounds", "2", "--output", f"{UNWRITABLE}/r.json"]) == 2
    line = _one_error_line(capsys)
    assert line.startswith(f"fedrobust: error: output: cannot write to {UNWRITABLE}/r.json: ")


def test_run_output_that_is_a_folder_fails_before_the_run(no_training, capsys, tmp_path):
    assert main(["run", "--output", str(tmp_path)]) == 2
    assert _one_error_line(capsys) == f"fedrobust: error: output: {tmp_path} is a folder, not a file"


def test_checkpoint_dir_that_cannot_be_written_fails_before_the_run(no_training, capsys):
    assert main(["run", "--rounds", "2", "--checkpoint-dir", UNWRITABLE]) == 2
    line = _one_error_line(capsys)
    assert line.startswith(f"fedrobust: error: checkpoint-dir: cannot write to {UNWRITABLE}: ")


def test_sweep_output_that_cannot_be_written_names_the_folder_not_the_grid(no_training, capsys, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('seed = [0, 1]\nrounds = 2\nmodel = "logistic"\n')
    assert main(["sweep", str(grid), "--output", UNWRITABLE, "--engine", "inprocess", "--quiet"]) == 2
    line = _one_error_line(capsys)
    assert line.startswith(f"fedrobust: error: sweep folder: cannot write to {UNWRITABLE}: ")
    assert str(grid) not in line


def test_sweep_cell_checkpoint_dir_is_checked_before_any_cell_runs(no_training, capsys, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(f'seed = [0, 1]\nrounds = 2\nmodel = "logistic"\ncheckpoint-dir = "{UNWRITABLE}"\n')
    assert main(["sweep", str(grid), "--output", str(tmp_path / "sweep"), "--engine", "inprocess", "--quiet"]) == 2
    assert f"checkpoint-dir: cannot write to {UNWRITABLE}: " in _one_error_line(capsys)


def test_report_output_that_cannot_be_written_fails_before_reading_the_sweep(capsys, tmp_path):
    assert main(["report", str(tmp_path / "no-sweep-here"), "--output", UNWRITABLE]) == 2
    line = _one_error_line(capsys)
    assert line.startswith(f"fedrobust: error: report folder: cannot write to {UNWRITABLE}: ")
