"""Every value a strategy refuses is refused by the config check first, with the same line.

The strategies are built inside the ServerApp, after Ray has started; a value only their
constructors (or aggregators) refused would fail there, with a traceback, instead of as a config
error before anything runs (``fedrobust run`` exits 2, a sweep refuses the grid).
"""

import pytest
import torch

from fedrobust.compression import COMPRESSORS
from fedrobust.config import ConfigError, RunConfig
from fedrobust.strategies import STRATEGIES

D = 12
# Values at and beyond the edges of what the keys the strategies read accept.
EDGES = {
    "beta": [0.0, 0.2, 0.49, 0.5, 0.6, 0.99],
    "compressor": ["auto", *COMPRESSORS],
    "krum_f": [-1, 0, 1, 3, 4, 100],
    "krum_m": [1, 2, 4, 100],
    "rho": [1e-9, 0.5, 1.0],
    "coord_ratio": [1e-9, 1.0],
    "memory": ["auto", "mean", "rows", "none"],
    "memory_weights": ["gm", "uniform"],
    "selection": ["sample", "top-k"],
    "norm_option": [1, 2],
    "coord_method": ["rand", "top"],
    "byzantine_fraction": [0.0, 0.4, 0.9],
    "clients_per_round": [1, 2, 3, 10],
}
# What a strategy needs beyond (cfg, x0, shapes): fltrust's server trains, and a D-sized x0 is no
# run's model, so it gets a server gradient of its own here (make_strategy builds the run's).
EXTRA_ARGS = {"fltrust": {"server_update_fn": lambda x, server_round: torch.ones_like(x)}}


def _cases():
    for name in sorted(STRATEGIES):
        for key, values in EDGES.items():
            for value in values:
                yield name, key, value


def _config(name, key, value):
    extra = {"compressor_params": "ratio=0.5"} if key == "compressor" and value in ("top-k", "rand-k") else {}
    return RunConfig.from_mapping({"strategy": name, "device": "cpu", "num_clients": 10, key: value, **extra})


@pytest.mark.parametrize("name, key, value", list(_cases()))
def test_a_config_the_check_accepts_builds_its_strategy_and_aggregates(name, key, value):
    try:
        cfg = _config(name, key, value)
    except ConfigError as err:
        assert "Traceback" not in str(err) and all(line.strip() for line in str(err).splitlines())
        return
    strategy = STRATEGIES[name](cfg, torch.zeros(D), [(D,)], **EXTRA_ARGS.get(name, {}))
    rows = torch.randn(cfg.clients_per_round, strategy.reply_length(1)).sign()  # valid for every protocol
    strategy.server_round = 1
    strategy.round_metrics = [{"grad_norm": 1.0}] * cfg.clients_per_round
    strategy.round_partitions = list(range(cfg.clients_per_round))
    strategy.step(rows, torch.ones(cfg.clients_per_round, dtype=torch.float64))
    assert torch.isfinite(strategy.x).all()


@pytest.mark.parametrize(
    "name, key, value",
    [("trimmed-mean", "beta", 0.5), ("trimmed-mean", "beta", 0.6), ("signsgd-mv", "compressor", "qsgd")],
)
def test_the_config_check_and_the_constructor_refuse_with_the_same_line(name, key, value):
    with pytest.raises(ConfigError) as by_config:
        RunConfig.from_mapping({"strategy": name, key: value})
    (line,) = str(by_config.value).splitlines()
    other = RunConfig.from_mapping({"strategy": "mean-sgd", key: value, "device": "cpu"})  # valid for mean-sgd
    with pytest.raises(ConfigError) as by_constructor:
        STRATEGIES[name](other, torch.zeros(D), [(D,)])
    assert str(by_constructor.value) == line


def test_the_cli_refuses_trimmed_mean_beta_above_one_half_before_anything_runs(capsys):
    from fedrobust.cli import main

    assert main(["run", "--strategy", "trimmed-mean", "--beta", "0.6", "--quiet"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == "fedrobust: error: beta must lie in [0, 0.5) for trimmed-mean (trimmed from each side), got 0.6"
