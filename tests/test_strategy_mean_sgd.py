"""mean-SGD: x ← x − lr · mean(G) over the client gradients."""

import numpy as np
import torch
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters

from fedrobust.config import RunConfig
from fedrobust.strategies import STRATEGIES, MeanSGD


def test_mean_sgd_steps_against_the_mean_gradient():
    cfg = RunConfig(strategy="mean-sgd", lr=0.5, device="cpu")
    s = STRATEGIES["mean-sgd"](cfg, torch.tensor([1.0, 1.0, 1.0]), [(3,)])
    assert isinstance(s, MeanSGD) and s.protocol == "gradient"
    grads = [np.array([1.0, 2.0, 3.0], np.float32), np.array([3.0, 2.0, 1.0], np.float32)]
    results = [(None, FitRes(Status(Code.OK, ""), ndarrays_to_parameters([g]), n, {})) for g, n in zip(grads, (1, 100))]
    s.aggregate_fit(1, results, [])
    # unweighted mean (2, 2, 2) whatever the example counts; x = 1 - 0.5 * 2
    torch.testing.assert_close(s.x, torch.zeros(3))
