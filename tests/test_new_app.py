"""`fedrobust new-app DIR`: a Flower App folder with fedrobust's components and every run key."""

import tomllib

import pytest
from flwr.common.config import validate_config

from fedrobust._version import __version__
from fedrobust.cli import main
from fedrobust.config import ConfigError, RunConfig
from fedrobust.run.new_app import app_pyproject, write_app


def test_the_app_holds_every_run_key_at_its_value_and_flower_accepts_it(tmp_path, capsys):
    folder = tmp_path / "My_App"
    assert main(["new-app", str(folder), "--strategy", "bgmd", "--rounds", "3", "--byzantine-fraction", "0.2",
                 "--attack", "alie", "--no-weighted"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {folder / 'pyproject.toml'}; run it with: flwr run {folder}"
    document = tomllib.loads((folder / "pyproject.toml").read_text())
    assert document["project"]["name"] == "my-app"
    assert document["project"]["dependencies"] == [f"fedrobust=={__version__}"]
    app = document["tool"]["flwr"]["app"]
    assert app["components"] == {"serverapp": "fedrobust.run.app:server_app",
                                 "clientapp": "fedrobust.run.app:client_app"}
    expected = RunConfig(strategy="bgmd", rounds=3, byzantine_fraction=0.2, attack="alie").to_dict()
    assert app["config"] == expected  # every key, in declaration order, with the types RunConfig reads back
    assert list(app["config"]) == list(expected)
    assert RunConfig.from_mapping(app["config"]) == RunConfig.from_mapping(expected)
    valid, errors, _ = validate_config(document, check_module=True, project_dir=folder)
    assert valid, errors


def test_each_key_carries_its_help_as_a_comment():
    text = app_pyproject("x")
    lines = text.splitlines()
    at = lines.index('strategy = "fedavg"')
    assert lines[at - 1] == "# server strategy"
    assert "gm-tol = 1e-07" in lines and tomllib.loads(text)["tool"]["flwr"]["app"]["config"]["gm-tol"] == 1e-7


def test_bad_values_names_and_an_existing_app_are_refused_before_writing(tmp_path, capsys):
    assert main(["new-app", str(tmp_path / "a"), "--lr", "-1"]) == 2
    assert capsys.readouterr().err.strip() == "fedrobust: error: lr must be > 0, got -1.0"
    assert not (tmp_path / "a").exists()
    with pytest.raises(ConfigError, match="app name 'Bad Name'"):
        app_pyproject("Bad Name")
    write_app(tmp_path / "b")
    before = (tmp_path / "b" / "pyproject.toml").read_text()
    with pytest.raises(ConfigError, match="exists already"):
        write_app(tmp_path / "b", {"strategy": "gmd"})
    assert (tmp_path / "b" / "pyproject.toml").read_text() == before
