"""FedAvg: x ← x − mean(Δ), optionally weighted by the clients' numbers of examples."""

import numpy as np
import torch
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters

from fedrobust.config import RunConfig
from fedrobust.strategies import STRATEGIES, FedAvg


def _results(deltas, counts):
    return [
        (None, FitRes(Status(Code.OK, ""), ndarrays_to_parameters([np.asarray(d, np.float32)]), n, {}))
        for d, n in zip(deltas, counts)
    ]


def test_fedavg_subtracts_the_mean_difference_without_lr():
    s = STRATEGIES["fedavg"](RunConfig(lr=0.5, device="cpu"), torch.tensor([1.0, 1.0]), [(2,)])
    assert isinstance(s, FedAvg) and s.protocol == "local-steps"
    s.aggregate_fit(1, _results([[1.0, 0.0], [3.0, 2.0]], [10, 30]), [])
    torch.testing.assert_close(s.x, torch.tensor([-1.0, 0.0]))


def test_weighted_fedavg_weights_by_examples():
    s = FedAvg(RunConfig(weighted=True, device="cpu"), torch.zeros(2), [(2,)])
    s.aggregate_fit(1, _results([[1.0, 0.0], [3.0, 2.0]], [10, 30]), [])
    torch.testing.assert_close(s.x, -torch.tensor([2.5, 1.5]))
