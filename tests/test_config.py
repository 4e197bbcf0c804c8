"""RunConfig: defaults, validation messages, key names shared with pyproject and the CLI."""

import dataclasses
import tomllib
from pathlib import Path

import pytest

from fedrobust.cli import build_parser, config_values
from fedrobust.config import ConfigError, RunConfig, config_keys, key_of

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_are_valid_and_keys_are_kebab_case():
    cfg = RunConfig()
    assert cfg.to_dict()["byzantine-fraction"] == 0.0
    assert all("_" not in k for k in config_keys())
    assert key_of("clients_per_round") == "clients-per-round"


def test_from_mapping_accepts_keys_and_field_names_and_round_trips():
    cfg = RunConfig.from_mapping({"num-clients": 4, "clients_per_round": 2}, lr=1)
    assert (cfg.num_clients, cfg.clients_per_round, cfg.lr) == (4, 2, 1.0)
    assert isinstance(cfg.lr, float)
    assert RunConfig.from_mapping(cfg.to_dict()) == cfg


def test_unknown_key_lists_the_known_ones():
    with pytest.raises(ConfigError) as err:
        RunConfig.from_mapping({"learning-rate": 0.1})
    assert "unknown key 'learning-rate'" in str(err.value)
    assert "lr" in str(err.value) and "byzantine-fraction" in str(err.value)


def test_unknown_names_list_the_allowed_values():
    with pytest.raises(ConfigError) as err:
        RunConfig(strategy="krum-typo")
    assert str(err.value).startswith("strategy must be one of ") and {"mean-sgd", "fedavg"} <= set(
        str(err.value).split("; got")[0].removeprefix("strategy must be one of ").split(", ")
    )
    with pytest.raises(ConfigError, match="device must be one of auto, cpu, cuda"):
        RunConfig(device="tpu")


def test_every_problem_gets_one_line():
    with pytest.raises(ConfigError) as err:
        RunConfig.from_mapping({"lr": -1, "rounds": 0, "model": "nope", "clients-per-round": 11})
    lines = str(err.value).splitlines()
    assert len(lines) == 4
    assert any(line.startswith("lr must be > 0") for line in lines)
    assert any(line.startswith("rounds must be >= 1") for line in lines)
    assert any(line.startswith("model must be one of") for line in lines)
    assert any("clients-per-round must lie in [1, num-clients=10]" in line for line in lines)


def test_types_are_checked_not_coerced_from_strings_or_bools():
    with pytest.raises(ConfigError, match=r"lr must be of type float, got '0.1' \(str\)"):
        RunConfig.from_mapping({"lr": "0.1"})
    with pytest.raises(ConfigError, match="rounds must be of type int, got True"):
        RunConfig(rounds=True)
    with pytest.raises(ConfigError, match="weighted must be of type bool"):
        RunConfig(weighted=1)


def test_attack_keys_are_validated():
    with pytest.raises(ConfigError, match="attack must be one of .*none.*bit-flip"):
        RunConfig(attack="flip-everything")
    with pytest.raises(ConfigError, match="attack-params: expected name=value"):
        RunConfig(attack="gaussian", attack_params="variance")
    with pytest.raises(ConfigError, match="byzantine-mode must be one of fixed, dynamic"):
        RunConfig(byzantine_mode="sometimes")
    with pytest.raises(ConfigError, match=r"byzantine-fraction must lie in \[0, 1\)"):
        RunConfig(byzantine_fraction=1.0)
    assert RunConfig(byzantine_fraction=0.2, attack="bit-flip").byzantine_fraction == 0.2


def test_cuda_request_without_cuda_is_a_config_error(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert RunConfig(device="auto").torch_device().type == "cpu"
    with pytest.raises(ConfigError, match="device='cuda'"):
        RunConfig(device="cuda").torch_device()


def test_pyproject_app_config_has_exactly_the_config_keys_and_defaults():
    app = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["flwr"]["app"]
    assert app["components"] == {"serverapp": "fedrobust.run.app:server_app", "clientapp": "fedrobust.run.app:client_app"}
    assert list(app["config"]) == list(config_keys())
    assert RunConfig.from_mapping(app["config"]) == RunConfig()


def test_cli_flags_are_the_config_keys():
    run = build_parser()._subparsers._group_actions[0].choices["run"]
    flags = {opt for action in run._actions for opt in action.option_strings}
    assert {f"--{k}" for k in config_keys()} <= flags
    args = build_parser().parse_args(["run", "--byzantine-fraction", "0", "--no-weighted", "--lr", "0.5"])
    assert config_values(args) == {"byzantine-fraction": 0.0, "weighted": False, "lr": 0.5}
    assert len(dataclasses.fields(RunConfig)) == len(config_keys())


def test_doubtful_robustness_settings_warn_and_are_logged(caplog):
    from fedrobust.run.app import make_strategy
    from fedrobust.config import config_warnings

    cfg = RunConfig(strategy="trimmed-mean", attack="bit-flip", byzantine_fraction=0.3, beta=0.1,
                    dataset="breast-cancer", model="logistic", device="cpu")
    (line,) = config_warnings(cfg)
    assert line.startswith("beta=0.1 < byzantine-fraction=0.3: trimmed-mean")
    assert config_warnings(cfg.replace(beta=0.3)) == []
    krum = config_warnings(cfg.replace(strategy="krum", krum_f=1))
    assert len(krum) == 1 and krum[0].startswith("krum-f=1 < 3 Byzantine clients expected")
    make_strategy(cfg)
    assert "beta=0.1 < byzantine-fraction=0.3" in caplog.text


def test_new_reliability_keys_are_validated():
    from fedrobust.config import execution_keys

    with pytest.raises(ConfigError, match="resume needs checkpoint-dir"):
        RunConfig(resume=True)
    with pytest.raises(ConfigError, match="round-timeout must be"):
        RunConfig(round_timeout=float("inf"))
    assert {"rounds", "output", "checkpoint-dir", "resume", "device"} <= set(execution_keys())
    assert "lr" not in execution_keys() and "strategy" not in execution_keys()
