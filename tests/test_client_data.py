"""A client's training data (``fedrobust.run.build.client_data``): its partition's examples, laid
out once per process and returned as views, or gathered at every call above the layout's size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedrobust.config import RunConfig
from fedrobust.run import build

CONFIGS = {
    "iid": RunConfig(dataset="mnist5k", num_clients=10, clients_per_round=10),
    "dirichlet, validation and root set held out": RunConfig(
        strategy="fltrust", dataset="mnist5k", num_clients=7, clients_per_round=7, partitioner="dirichlet",
        dirichlet_alpha=0.3, validation_size=300, root_size=100, seed=3,
    ),
}


def _gathered(cfg: RunConfig, partition_id: int) -> tuple[np.ndarray, np.ndarray]:
    splits = build.load_splits(cfg)
    idx = build.client_indices(cfg, partition_id)
    return splits.x_train[idx], splits.y_train[idx]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_partition_has_the_examples_of_its_indices_in_their_order(name):
    cfg = CONFIGS[name]
    for p in range(cfg.num_clients):
        x, y = build.client_data(cfg, p)
        want_x, want_y = _gathered(cfg, p)
        assert x.dtype == torch.from_numpy(want_x).dtype and tuple(x.shape) == want_x.shape
        np.testing.assert_array_equal(x.numpy(), want_x)
        np.testing.assert_array_equal(y.numpy(), want_y)


def test_a_client_build_gets_views_of_one_layout_not_a_copy_per_call():
    cfg = CONFIGS["iid"]
    first, again = build.client_data(cfg, 3), build.client_data(cfg, 3)
    assert first[0].data_ptr() == again[0].data_ptr() and first[1].data_ptr() == again[1].data_ptr()
    neighbour = build.client_data(cfg, 4)[0]
    assert neighbour.untyped_storage().data_ptr() == first[0].untyped_storage().data_ptr()  # one buffer


def test_data_past_the_layouts_size_is_gathered_at_each_call_with_the_same_values(monkeypatch):
    cfg = CONFIGS["iid"].replace(seed=11)  # not laid out yet in this process
    monkeypatch.setattr(build, "MAX_LAYOUT_BYTES", 1000)
    build._layout.cache_clear()
    try:
        first, again = build.client_data(cfg, 2), build.client_data(cfg, 2)
        assert first[0].data_ptr() != again[0].data_ptr()
        want_x, want_y = _gathered(cfg, 2)
        np.testing.assert_array_equal(first[0].numpy(), want_x)
        np.testing.assert_array_equal(first[1].numpy(), want_y)
    finally:
        build._layout.cache_clear()


@pytest.mark.parametrize("partition_id", [-1, 10])
def test_a_partition_id_outside_the_federation_is_refused(partition_id):
    with pytest.raises(ValueError, match="partition_id must lie in"):
        build.client_data(CONFIGS["iid"], partition_id)
