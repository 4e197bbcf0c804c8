"""The plugin classes take Flower's own argument names where Flower has the same rule, so a user
swapping Flower's Krum, MultiKrum or Bulyan for fedrobust's keeps their arguments."""

import numpy as np
import pytest
from flwr.server.strategy.aggregate import aggregate_krum

from fedrobust.plugin import legacy, message


def test_legacy_krum_takes_flower_krum_arguments():
    assert legacy.FedKrum(num_malicious_clients=2).aggregator.rule.krum_f == 2
    rule = legacy.FedKrum(num_malicious_clients=1, num_clients_to_keep=3).aggregator.rule
    assert (rule.krum_f, rule.krum_m) == (1, 3)
    assert legacy.FedKrum(num_clients_to_keep=0).aggregator.rule.krum_m == 1  # Flower's 0: plain Krum


def test_message_krum_multikrum_and_bulyan_take_flower_arguments():
    rule = message.FedKrum(num_malicious_nodes=2, num_nodes_to_select=3).aggregator.rule
    assert (rule.krum_f, rule.krum_m) == (2, 3)
    assert message.FedBulyan(num_malicious_nodes=1).aggregator.rule.f == 1
    assert legacy.FedBulyan(num_malicious_clients=1).aggregator.rule.f == 1


def test_both_names_for_one_parameter_are_refused():
    with pytest.raises(TypeError, match="give krum_f or Flower's num_malicious_nodes, not both"):
        message.FedKrum(krum_f=1, num_malicious_nodes=2)


def test_flower_names_mean_what_they_mean_in_flower():
    """Flower's aggregate_krum and fedrobust's FedKrum with Flower's arguments pick the same update."""
    rng = np.random.default_rng(0)
    x = [np.zeros(6, np.float32)]
    replies = [[(rng.normal(0.1, 0.05, 6)).astype(np.float32)] for _ in range(8)]
    replies += [[np.full(6, -50.0, np.float32)] for _ in range(2)]
    for keep in (0, 3):
        strategy = legacy.FedKrum(num_malicious_clients=2, num_clients_to_keep=keep)
        ours = strategy.aggregator.aggregate(1, x, replies).arrays[0]
        theirs = aggregate_krum([(r, 1) for r in replies], 2, keep)[0]
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)
