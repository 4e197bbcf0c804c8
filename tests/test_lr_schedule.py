"""The lr-schedule run key: the step size each round's clients get and the server steps with."""

import math

import pytest
import torch

from fedrobust.config import ConfigError, RunConfig
from fedrobust.optim import scheduled_lr
from fedrobust.strategies import STRATEGIES


def _strategy(name, **keys):
    cfg = RunConfig(strategy=name, rounds=4, lr=0.2, device="cpu", **keys)
    return STRATEGIES[name](cfg, torch.zeros(3), [(3,)])


def test_cosine_anneals_from_lr_towards_zero_and_constant_stays():
    lrs = [scheduled_lr(0.2, "cosine", t, 4) for t in range(1, 5)]
    assert lrs[0] == 0.2 and all(a > b > 0 for a, b in zip(lrs, lrs[1:]))
    assert lrs[2] == pytest.approx(0.1)  # half-way: cos(pi/2) = 0
    assert {scheduled_lr(0.2, "constant", t, 4) for t in range(1, 5)} == {0.2}
    with pytest.raises(ValueError, match="lr-schedule must be one of constant, cosine"):
        scheduled_lr(0.2, "linear", 1, 4)


def test_clients_get_the_rounds_lr_and_the_server_steps_with_it():
    strategy = _strategy("gmd", lr_schedule="cosine")
    assert [strategy.fit_config(t)["lr"] for t in (1, 3)] == [0.2, pytest.approx(0.1)]
    strategy.server_round = 3
    strategy.step(torch.ones(5, 3), torch.ones(5))  # GM of identical rows = the row
    assert torch.allclose(strategy.x, torch.full((3,), -0.2 * (1 + math.cos(math.pi / 2)) / 2))
    constant = _strategy("gmd")
    constant.server_round = 3
    constant.step(torch.ones(5, 3), torch.ones(5))
    assert torch.allclose(constant.x, torch.full((3,), -0.2))


def test_an_unknown_schedule_is_a_config_error_naming_the_choices():
    with pytest.raises(ConfigError, match="lr-schedule"):
        RunConfig(lr_schedule="step")
