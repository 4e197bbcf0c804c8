"""Checkpoints and resume: state round-trips, atomic files, config checks, resumed == uninterrupted."""

import numpy as np
import pytest
import torch
from flwr.common import Array, ArrayRecord, ConfigRecord, RecordDict

import fedrobust
from fedrobust.run.app import make_strategy
from fedrobust.run.checkpoint import (
    SERVER_FILE,
    atomic_write,
    load_client_state,
    load_server,
    resume_round,
    save_client_state,
)
from fedrobust.cli import main
from fedrobust.config import ConfigError, RunConfig
from fedrobust.run.inprocess import run_inprocess
from fedrobust.strategies import STRATEGIES

SMALL = dict(
    dataset="breast-cancer", model="logistic", num_clients=5, clients_per_round=3, lr=0.1, batch_size=16,
    device="cpu", attack="bit-flip", byzantine_fraction=0.2, byzantine_mode="dynamic",
)
EXTRA = {"fl-bgmd": {"compressor": "top-k", "compressor_params": "ratio=0.3"}, "qbgmd": {"compressor": "qsgd"}}
STATEFUL = ["bgmd", "fl-bgmd", "c-rsa", "rsa", "norm-threshold-ef"]  # server memory or client state


def small(strategy, **keys):
    return RunConfig(strategy=strategy, **{**SMALL, **EXTRA.get(strategy, {}), **keys})


def without_timings(results):
    return [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in results["rounds"]]


def final_model(cfg):
    seen = {}
    results = run_inprocess(cfg, after_round=lambda s, r: seen.__setitem__("x", s.x.clone()))
    return seen["x"], results


def assert_state_equal(a, b):
    assert set(a) == set(b)
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_strategy_state_round_trips_through_a_checkpoint(strategy, tmp_path):
    cfg = small(strategy, rounds=2, checkpoint_dir=str(tmp_path))
    seen = {}
    run_inprocess(cfg, after_round=lambda s, r: seen.__setitem__("state", s.state_dict()))
    resumed = make_strategy(cfg.replace(resume=True))
    assert_state_equal(resumed.state_dict(), seen["state"])
    assert resumed.round_offset == 2 and resumed.rounds_left == 0 and len(resumed.records) == 2
    if strategy in ("bgmd", "qbgmd"):
        assert seen["state"]["memory"] is not None
    if strategy == "fl-bgmd":
        assert seen["state"]["residuals"].abs().sum() > 0
    if strategy in ("c-rsa", "rsa"):
        assert seen["state"]["initialised"]


@pytest.mark.parametrize("strategy", STATEFUL)
def test_resumed_run_equals_the_uninterrupted_one_bit_for_bit(strategy, tmp_path):
    x_full, full = final_model(small(strategy, rounds=6))
    run_inprocess(small(strategy, rounds=3, checkpoint_dir=str(tmp_path)))
    x_resumed, resumed = final_model(small(strategy, rounds=6, checkpoint_dir=str(tmp_path), resume=True))
    assert torch.equal(x_full, x_resumed)
    assert without_timings(full) == without_timings(resumed)
    assert load_server(tmp_path)["round"] == 6


def test_client_state_is_what_makes_resume_exact(tmp_path, monkeypatch):
    """Without restoring the clients' saved state (C-RSA's worker models), the resumed run differs."""
    from fedrobust.clients.round import RoundClient

    x_full, _ = final_model(small("c-rsa", rounds=4))
    run_inprocess(small("c-rsa", rounds=2, checkpoint_dir=str(tmp_path)))
    monkeypatch.setattr(RoundClient, "_restore", lambda self, r: None)
    x_resumed, _ = final_model(small("c-rsa", rounds=4, checkpoint_dir=str(tmp_path), resume=True))
    assert not torch.equal(x_full, x_resumed)


def test_client_state_files_round_trip_and_keep_two(tmp_path):
    state = RecordDict({
        "memory": ArrayRecord({"e": Array(np.arange(5, dtype=np.float32))}),
        "counts": ConfigRecord({"rounds-participated": 3}),
    })
    for r in (2, 5, 7):
        save_client_state(tmp_path, 4, r, state)
    files = sorted(p.name for p in (tmp_path / "clients" / "4").iterdir())
    assert files == ["round-5.bin", "round-7.bin"]
    back = load_client_state(tmp_path, 4, before_round=7)  # a rerun of round 7 starts from round 5's
    np.testing.assert_array_equal(back["memory"]["e"].numpy(), np.arange(5, dtype=np.float32))
    assert back["counts"]["rounds-participated"] == 3
    assert load_client_state(tmp_path, 4, before_round=5) is None
    assert load_client_state(tmp_path, 3, before_round=9) is None


def test_atomic_write_replaces_whole_files_and_leaves_no_temporaries(tmp_path):
    path = atomic_write(tmp_path / "f.bin", b"old")
    atomic_write(path, b"new")
    assert path.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_resume_checks_the_config(tmp_path):
    cfg = small("bgmd", rounds=2, checkpoint_dir=str(tmp_path))
    run_inprocess(cfg)
    with pytest.raises(ConfigError, match="already holds a checkpoint .*resume"):
        resume_round(cfg)
    with pytest.raises(ConfigError, match=r"changed: lr=0.5 \(checkpoint: 0.1\)"):
        resume_round(cfg.replace(resume=True, lr=0.5))
    with pytest.raises(ConfigError, match="past rounds=1"):
        resume_round(cfg.replace(resume=True, rounds=1))
    assert resume_round(cfg.replace(resume=True, rounds=9, output="x.json", device="auto")) == 2
    assert resume_round(cfg.replace(resume=True, checkpoint_dir=str(tmp_path / "empty"))) == 0
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / SERVER_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="has no fedrobust checkpoint header"):
        resume_round(cfg.replace(resume=True, checkpoint_dir=str(tmp_path / "bad")))


def test_resume_refuses_a_key_set_off_its_default_that_the_checkpoint_predates(tmp_path, monkeypatch):
    import fedrobust.run.checkpoint as checkpoint

    cfg = small("bgmd", rounds=2, checkpoint_dir=str(tmp_path))
    run_inprocess(cfg)
    load = checkpoint.load_server

    def made_before_validation_size(directory):
        state = load(directory)
        del state["config"]["validation-size"]
        return state

    monkeypatch.setattr(checkpoint, "load_server", made_before_validation_size)
    assert resume_round(cfg.replace(resume=True)) == 2  # that run had the default, 0: the same run
    with pytest.raises(ConfigError, match=r"changed: validation-size=50 \(checkpoint: made before validation-size "
                                          r"existed, so the default 0\)"):
        resume_round(cfg.replace(resume=True, validation_size=50))


def test_resume_of_a_finished_run_runs_no_round(tmp_path):
    cfg = small("bgmd", rounds=2, checkpoint_dir=str(tmp_path))
    first = run_inprocess(cfg)
    again = run_inprocess(cfg.replace(resume=True))
    assert again["rounds"] == first["rounds"]


def test_cli_resume_mistakes_are_one_line_errors(tmp_path, capsys):
    assert main(["run", "--resume", "--quiet"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "fedrobust: error: resume needs checkpoint-dir (the folder whose checkpoint the run continues)"
    ]
    cfg = small("bgmd", rounds=1, checkpoint_dir=str(tmp_path))
    run_inprocess(cfg)
    flags = [f"--{k}={v}" for k, v in cfg.replace(lr=0.3).to_dict().items() if not isinstance(v, bool)]
    assert main(["run", *flags, "--resume", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fedrobust: error: resume: ") and "lr=0.3" in err[0]


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["bgmd", "c-rsa"])
def test_engine_resume_equals_uninterrupted_run(strategy, tmp_path):
    """Through Flower's simulation engine: 4 rounds, or 2 rounds then --resume to 4: the same model."""
    keys = dict(SMALL, strategy=strategy, rounds=4)
    full = fedrobust.simulate(keys, checkpoint_dir=str(tmp_path / "full"))
    fedrobust.simulate(keys, rounds=2, checkpoint_dir=str(tmp_path / "part"))
    resumed = fedrobust.simulate(keys, checkpoint_dir=str(tmp_path / "part"), resume=True)
    x_full = load_server(tmp_path / "full")["strategy"]["x"]
    x_resumed = load_server(tmp_path / "part")["strategy"]["x"]
    assert torch.equal(x_full, x_resumed)
    assert without_timings(full) == without_timings(resumed)
