"""Settings that are silently capped or ignored warn in one line each, printed once before the run."""

import pytest

from fedrobust import sweep
from fedrobust.cli import main
from fedrobust.config import RunConfig, config_warnings
from fedrobust.core.results import results_dict

SMALL = {"dataset": "digits", "num-clients": 3, "clients-per-round": 3, "rounds": 1, "device": "cpu"}


@pytest.mark.parametrize(
    "settings, expected",
    [
        ({"strategy": "krum", "krum-f": 5},
         "krum-f=5, capped to f=3: Krum needs 2f + 2 < n = clients-per-round=10"),
        ({"strategy": "krum", "attack": "bit-flip", "byzantine-fraction": 0.4},
         "krum-f=-1 derives f=4 from byzantine-fraction=0.4, capped to f=3: Krum needs 2f + 2 < n = clients-per-round=10"),
        ({"strategy": "krum", "krum-f": 3, "krum-m": 9},
         "krum-m=9 is capped to 7: multi-Krum averages at most n - f = 10 - 3 rows"),
        ({"strategy": "krum", "num-clients": 5, "clients-per-round": 2},
         "krum with clients-per-round=2 < 3: Krum is undefined, so every round averages the replies"),
        ({"strategy": "bgmd", "compressor": "qsgd"},
         "compressor='qsgd' is ignored: bgmd's clients (gradient protocol) do not use the run's compressor"),
        ({"strategy": "fedavg", "compressor": "top-k", "compressor-params": "ratio=0.1"},
         "compressor='top-k' and compressor-params='ratio=0.1' are ignored: fedavg's clients (local-steps "
         "protocol) do not use the run's compressor"),
        ({"attack": "bit-flip", "byzantine-fraction": 0.05},
         "byzantine-fraction=0.05 x num-clients=10 < 1: no client attacks, so attack=bit-flip has no effect; "
         "use byzantine-fraction >= 0.1"),
        ({"byzantine-fraction": 0.2},
         "byzantine-fraction=0.2 with attack=none: every client is honest; name an attack, or set byzantine-fraction=0"),
        ({"strategy": "norm-threshold-ef", "attack": "bit-flip", "byzantine-fraction": 0.3, "beta": 0.1},
         "beta=0.1 < byzantine-fraction=0.3: norm-threshold-ef drops fewer clients than there may be Byzantine "
         "clients; set beta >= byzantine-fraction"),
    ],
)
def test_each_capped_or_ignored_setting_warns_in_one_line(settings, expected):
    assert config_warnings(RunConfig.from_mapping(settings)) == [expected]


@pytest.mark.parametrize(
    "settings",
    [{}, {"strategy": "krum", "krum-f": 3, "krum-m": 7}, {"strategy": "qbgmd", "compressor": "qsgd"},
     {"attack": "bit-flip", "byzantine-fraction": 0.0}, {"attack": "bit-flip", "byzantine-fraction": 0.1},
     {"strategy": "krum", "attack": "bit-flip", "byzantine-fraction": 0.3}],
)
def test_settings_that_take_effect_do_not_warn(settings):
    assert config_warnings(RunConfig.from_mapping(settings)) == []


def test_the_results_document_records_the_warnings():
    from fedrobust.run.app import make_strategy

    cfg = RunConfig(strategy="krum", krum_f=5, dataset="digits", model="logistic", device="cpu")
    assert results_dict(cfg.to_dict(), [], warnings=config_warnings(cfg))["warnings"] == config_warnings(cfg) != []
    # the App hands the run's warnings to the strategy, whose results document lists them
    assert make_strategy(cfg, warn=False).results()["warnings"] == config_warnings(cfg)
    assert results_dict(RunConfig().to_dict(), [])["warnings"] == []


def test_fedrobust_run_prints_each_warning_once_before_the_run(monkeypatch, capsys):
    calls = []

    def fake_simulate(cfg, **kwargs):
        calls.append((capsys.readouterr().err, kwargs))  # what was printed before the run started
        return {"rounds": [{"round": 1, "accuracy": 0.5, "loss": 1.0}]}

    monkeypatch.setattr("fedrobust.run.simulation.simulate", fake_simulate)
    flags = [f"--{k}={v}" for k, v in SMALL.items()]
    assert main(["run", *flags, "--strategy", "krum", "--krum-f", "5", "--compressor", "qsgd", "--quiet"]) == 0
    ((before, kwargs),) = calls
    assert before.splitlines() == [
        "fedrobust: warning: compressor='qsgd' is ignored: krum's clients (gradient protocol) do not use the run's compressor",
        "fedrobust: warning: krum-f=5, capped to f=0: Krum needs 2f + 2 < n = clients-per-round=3",
    ]
    assert kwargs["warn"] is False  # the server does not log them a second time
    assert capsys.readouterr().err == ""


def test_fedrobust_sweep_warns_once_per_line_and_about_an_empty_grid(tmp_path, monkeypatch, capsys):
    ran = []

    def runner(cfg, on_round):
        ran.append(cfg)
        return {"config": cfg.to_dict(), "initial": {}, "rounds": [{"round": 1, "accuracy": 0.5, "loss": 1.0}]}

    monkeypatch.setattr(sweep, "simulate_cell", runner)
    grid = tmp_path / "grid.toml"
    grid.write_text("".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in SMALL.items())
                    + 'strategy = "krum"\nkrum-f = 5\nseed = [0, 1, 2]\n')
    assert main(["sweep", str(grid), "--output", str(tmp_path / "out"), "--quiet"]) == 0
    assert capsys.readouterr().err.splitlines() == [
        "fedrobust: warning: cell seed=0 (and 2 more): krum-f=5, capped to f=0: Krum needs 2f + 2 < n = "
        "clients-per-round=3"]
    assert len(ran) == 3
    empty = tmp_path / "empty.toml"
    empty.write_text("# nothing here\n")
    assert main(["sweep", str(empty), "--output", str(tmp_path / "out2"), "--quiet"]) == 0
    assert capsys.readouterr().err.splitlines() == [
        f"fedrobust: warning: {empty} sets no run key: the sweep runs one cell with every default"]
