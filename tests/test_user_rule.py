"""A new aggregation rule is one rule class and its registration (docs/extending.md).

The rule defined here, in the test file, then works as a ``strategy`` value of both Flower APIs
(in-process runs and the CLI) and as a plugin class of both APIs, with no other code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import torch

from fedrobust.aggregators import RULES, Rule, RuleStep, register_rule
from fedrobust.aggregators._gram import centred_gram, squared_distances
from fedrobust.cli import main
from fedrobust.config import RunConfig
from fedrobust.run.inprocess import run_inprocess
from fedrobust.strategies import STRATEGIES, RuleStrategy


@dataclass(frozen=True)
class MedoidRule(Rule):
    """The row with the smallest sum of distances to the others (robust to a minority of outliers)."""

    name: ClassVar[str] = "medoid"
    power: float = 1.0

    def __post_init__(self) -> None:
        if not self.power > 0:
            raise ValueError(f"power must be positive, got {self.power!r}")

    def __call__(self, rows, state, server_round, scale=1.0):
        score = squared_distances(centred_gram(rows)).pow(self.power / 2).sum(dim=1)
        best = int(score.argmin())
        return RuleStep(rows[best].clone(), scale, None, {"medoid": best})


@pytest.fixture
def medoid():
    register_rule(MedoidRule)
    yield MedoidRule
    del RULES["medoid"]


def _cfg(**kw):
    base = dict(strategy="medoid", dataset="digits", model="logistic", num_clients=6, clients_per_round=6,
                rounds=4, lr=0.5, attack="bit-flip", byzantine_fraction=0.2, device="cpu")
    return RunConfig(**{**base, **kw})


def test_a_registered_rule_is_a_strategy_of_both_apis(medoid):
    assert issubclass(STRATEGIES["medoid"], RuleStrategy) and STRATEGIES["medoid"].protocol == "gradient"
    finals = {}
    for api in ("legacy", "message"):
        seen = {}
        results = run_inprocess(_cfg(api=api), after_round=lambda s, r: seen.__setitem__("x", s.x.clone()))
        rounds = results["rounds"]
        assert all(0 <= r["medoid"] < 6 for r in rounds)  # the rule's metric is recorded
        assert rounds[-1]["accuracy"] > rounds[0]["accuracy"]
        finals[api] = seen["x"]
    assert torch.equal(finals["legacy"], finals["message"])
    assert STRATEGIES["medoid"](_cfg(), torch.zeros(3), [(3,)]).rule == MedoidRule()
    with pytest.raises(ValueError, match="power must be positive"):
        MedoidRule(power=0)


def test_a_registered_rule_runs_from_the_cli(medoid, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(
        'strategy = ["medoid", "gmd"]\ndataset = "digits"\nmodel = "logistic"\nnum-clients = 6\n'
        'clients-per-round = 6\nrounds = 2\nattack = "bit-flip"\nbyzantine-fraction = 0.2\ndevice = "cpu"\n'
    )
    out = tmp_path / "sweep"
    assert main(["sweep", str(grid), "--output", str(out), "--engine", "inprocess", "--quiet"]) == 0
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["config"]["strategy"] for r in records) == ["gmd", "medoid"]


def test_a_registered_rule_is_a_plugin_class_of_both_apis(medoid):
    from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays

    from fedrobust.plugin import legacy, message

    assert legacy.PLUGINS["medoid"] is legacy.FedMedoid and message.PLUGINS["medoid"] is message.FedMedoid
    assert legacy.FedMedoid.name == "medoid" and repr(legacy.FedMedoid(power=2.0)) == "FedMedoid(power=2.0)"
    with pytest.raises(TypeError):
        message.FedMedoid(rho=0.1)  # not one of the rule's parameters
    x = [np.zeros(5, np.float32)]
    rng = np.random.default_rng(0)
    replies = [[np.float32(0.1) + rng.normal(0, 0.01, 5).astype(np.float32)] for _ in range(6)]
    replies += [[np.full(5, -1e6, np.float32)], [np.full(5, 1e6, np.float32)]]
    strategy = legacy.FedMedoid(initial_parameters=ndarrays_to_parameters(x))
    strategy.initialize_parameters(None)
    results = [(None, FitRes(Status(Code.OK, ""), ndarrays_to_parameters(r), 10, {})) for r in replies]
    params, metrics = strategy.aggregate_fit(1, results, [])
    new = parameters_to_ndarrays(params)[0]
    assert np.all(np.abs(new - 0.1) < 0.05) and 0 <= metrics["medoid"] < 6
