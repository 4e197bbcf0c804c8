"""Determinism: the same config and seed give a bit-identical final model and the same round records."""

import pytest
import torch

import fedrobust
from fedrobust.run.checkpoint import load_server
from fedrobust.config import RunConfig
from fedrobust.run.inprocess import run_inprocess


def without_timings(results):
    return [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in results["rounds"]]


def test_dropout_draws_are_seeded_per_client_and_round():
    """LeNet's dropout draws from torch's global RNG; each fit seeds it from (seed, partition, round),
    so a second run in the same process (whose RNG has moved on) gives the same model."""
    cfg = RunConfig(
        strategy="mean-sgd", dataset="mnist5k", model="lenet", num_clients=4, clients_per_round=2, rounds=1,
        batch_size=8, device="cpu",
    )
    models = []
    for _ in range(2):
        run_inprocess(cfg, after_round=lambda s, r: models.append(s.x.clone()))
        torch.rand(3)  # move the global RNG on between the runs
    assert torch.equal(models[0], models[1])


@pytest.mark.slow
def test_two_engine_runs_give_the_same_model_and_records(tmp_path):
    keys = dict(
        strategy="bgmd", dataset="breast-cancer", model="logistic", num_clients=6, clients_per_round=4, rounds=3,
        lr=0.1, batch_size=16, device="cpu", attack="gaussian", byzantine_fraction=0.34, byzantine_mode="dynamic",
    )
    first = fedrobust.simulate(keys, checkpoint_dir=str(tmp_path / "a"))
    second = fedrobust.simulate(keys, checkpoint_dir=str(tmp_path / "b"))
    assert torch.equal(load_server(tmp_path / "a")["strategy"]["x"], load_server(tmp_path / "b")["strategy"]["x"])
    assert without_timings(first) == without_timings(second)
    assert {len(r["byzantine_clients"]) for r in first["rounds"]} != {0}  # the attack did take part
    assert all(r["num_clients"] == 4 for r in first["rounds"])
