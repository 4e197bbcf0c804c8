"""Centered clipping (Karimireddy, He and Jaggi, 2021): the function by hand and against ByzFL
0.0.11's ``CenteredClipping`` over several rounds, its bound on what hostile rows can do, its
server state through the strategy (checkpointed) and the plugin classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedrobust.aggregators.centered_clipping import centered_clipping
from fedrobust.aggregators.rules import RULES, CenteredClippingRule
from fedrobust.config import ConfigError, RunConfig
from fedrobust.plugin import legacy, message
from fedrobust.plugin.weights import WeightsAggregator
from fedrobust.run.inprocess import run_inprocess
from fedrobust.strategies import STRATEGIES

from _byzfl import load_byzfl

BYZFL = load_byzfl()


def test_by_hand():
    x = torch.tensor([[3.0, 0.0], [0.0, 1.0], [0.0, -40.0]], dtype=torch.float64)
    # v0 = 0: diffs (3, 0) norm 3 -> clipped to tau = 2: (2, 0); (0, 1) kept; (0, -40) -> (0, -2)
    v1 = np.array([2.0, 1.0 - 2.0]) / 3
    assert np.allclose(centered_clipping(x, None, 2.0).numpy(), v1)
    # second iteration from v1
    diffs = x.numpy() - v1
    norms = np.linalg.norm(diffs, axis=1)
    v2 = v1 + (diffs * np.minimum(1.0, 2.0 / norms)[:, None]).mean(0)
    assert np.allclose(centered_clipping(x, None, 2.0, iterations=2).numpy(), v2)


@pytest.mark.parametrize("tau,L", [(100.0, 1), (1.0, 3), (0.3, 5)])
def test_matches_byzfl_over_rounds(tau, L):
    theirs = BYZFL.agg.CenteredClipping(L=L, tau=tau)  # keeps its last aggregate, as the rule's state does
    rule, state = CenteredClippingRule(tau=tau, iterations=L), None
    rng = np.random.default_rng(1)
    for rnd in range(1, 4):
        x = rng.normal(0.5, 2.0, size=(9, 7))
        x[:2] = -50.0 * x[:2]
        step = rule(torch.from_numpy(x.copy()), state, rnd)
        state = step.state
        assert np.allclose(step.update.numpy(), theirs(x.copy()), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("magnitude", [1e20, 1e30, 3e38])
def test_f_hostile_rows_move_the_centre_by_at_most_f_tau_over_n(magnitude):
    honest = torch.full((8, 5), 0.1)
    bad = torch.tensor([[magnitude], [-magnitude]]).repeat(1, 5).float()
    x = torch.cat([honest, bad])
    v = centered_clipping(x, torch.full((5,), 0.1), tau=1.0)
    assert bool(torch.isfinite(v).all())
    assert float((v - 0.1).double().norm()) <= 2 * 1.0 / 10 + 1e-6


def test_argument_checks():
    with pytest.raises(ValueError, match="tau"):
        CenteredClippingRule(tau=0.0)
    with pytest.raises(ValueError, match="iterations"):
        CenteredClippingRule(iterations=0)
    with pytest.raises(ValueError, match="center"):
        centered_clipping(torch.zeros(3, 2), torch.zeros(3), 1.0)
    with pytest.raises(ConfigError, match="rule-params: centered-clipping takes no parameter 'scale' .*tau, iterations"):
        RunConfig(strategy="centered-clipping", rule_params="scale=3")


def test_rule_params_reach_the_rule():
    cfg = RunConfig(strategy="centered-clipping", rule_params="tau=0.5,iterations=3")
    strategy = STRATEGIES["centered-clipping"](cfg, torch.zeros(4), [(4,)])
    assert strategy.rule == CenteredClippingRule(tau=0.5, iterations=3)
    assert "centered-clipping" in RULES


def _cfg(**kw):
    base = dict(strategy="centered-clipping", dataset="digits", model="logistic", num_clients=8, clients_per_round=8,
                rounds=4, lr=0.5, attack="bit-flip", byzantine_fraction=0.25, device="cpu", client_momentum=0.9,
                rule_params="tau=1,iterations=2")
    return RunConfig(**{**base, **kw})


def test_the_strategy_starts_each_round_from_the_last_aggregate_and_checkpoints_it(tmp_path):
    states = []
    run_inprocess(_cfg(), after_round=lambda s, r: states.append((s.rule_state.clone(), s.x.clone())))
    assert all(bool(torch.isfinite(x).all()) for _, x in states)
    assert not torch.equal(states[0][0], states[1][0])
    # the rule state is part of the checkpoint: a run stopped after round 2 and resumed ends alike
    ckpt = str(tmp_path / "ckpt")
    run_inprocess(_cfg(rounds=2, checkpoint_dir=ckpt))
    resumed = []
    run_inprocess(_cfg(checkpoint_dir=ckpt, resume=True), after_round=lambda s, r: resumed.append(s.x.clone()))
    assert torch.equal(resumed[-1], states[-1][1])
    strategy = STRATEGIES["centered-clipping"](_cfg(), torch.zeros(3), [(3,)])
    strategy.rule_state = torch.tensor([1.0, 2.0, 3.0])
    fresh = STRATEGIES["centered-clipping"](_cfg(), torch.zeros(3), [(3,)])
    fresh.load_state_dict(strategy.state_dict())
    assert torch.equal(fresh.rule_state, strategy.rule_state)


def test_plugin_classes_carry_the_state_between_rounds():
    assert legacy.FedCenteredClipping(tau=2.0).aggregator.rule == CenteredClippingRule(tau=2.0)
    assert message.FedCenteredClipping(iterations=2).aggregator.rule.iterations == 2
    aggregator = WeightsAggregator(CenteredClippingRule(tau=0.5))
    x = [np.zeros(4, np.float32)]
    honest = [[np.full(4, 0.1, np.float32)] for _ in range(6)] + [[np.full(4, 1e20, np.float32)]]
    first = aggregator.aggregate(1, x, honest)
    assert aggregator.state is not None and np.isfinite(first.arrays[0]).all()
    v1 = (6 * 0.1 + 0.25) / 7  # honest diffs kept (norm 0.2), the attacker's clipped to 0.5 = 4 x 0.25
    assert np.allclose(first.arrays[0], v1)
    second = aggregator.aggregate(2, x, honest)  # from the last aggregate, not from 0
    assert np.allclose(second.arrays[0], v1 + (6 * (0.1 - v1) + 0.25) / 7)
