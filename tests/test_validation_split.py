"""The validation split (run key ``validation-size``): held out of the training split first, seeded,
disjoint from the root set and every partition, and evaluated every round (``val_accuracy``,
``val_loss``).
"""

import math

import numpy as np
import pytest
import torch

from fedrobust.config import ConfigError, RunConfig
from fedrobust.data import partition
from fedrobust.data.holdout import holdout_split
from fedrobust.models import flat_params, set_flat_params
from fedrobust.run import build
from fedrobust.run.app import make_strategy
from fedrobust.run.evaluation import evaluate_model
from fedrobust.run.inprocess import run_inprocess


def cfg_of(**keys):
    base = dict(strategy="fltrust", dataset="digits", model="logistic", num_clients=5, clients_per_round=5,
                rounds=2, device="cpu", validation_size=150)
    return RunConfig(**{**base, **keys})


# ------------------------------------------------------------------------------------ the indices
@pytest.mark.parametrize("strategy", ["fltrust", "mean-sgd"])
def test_validation_root_and_client_indices_are_disjoint_and_cover_the_training_split(strategy):
    cfg = cfg_of(strategy=strategy)
    splits = build.load_splits(cfg)
    val, root = build.validation_indices(cfg), build.root_indices(cfg)
    parts = [build.client_indices(cfg, p) for p in range(cfg.num_clients)]
    assert len(val) == 150 and len(np.unique(val)) == 150
    assert len(root) == (100 if strategy == "fltrust" else 0)
    assert np.intersect1d(val, root).size == 0
    assert all(np.intersect1d(val, p).size == 0 and np.intersect1d(root, p).size == 0 for p in parts)
    # iid gives every remaining example to one client: together they are the training split, once each.
    everything = np.sort(np.concatenate([val, root, *parts]))
    np.testing.assert_array_equal(everything, np.arange(splits.num_train))
    # The validation rows are training rows; the test split is what the dataset loads.
    x_val, y_val = build.validation_data(cfg)
    assert x_val.device.type == "cpu" and y_val.device.type == "cpu"
    np.testing.assert_array_equal(x_val.numpy(), splits.x_train[val])
    np.testing.assert_array_equal(y_val.numpy(), splits.y_train[val])
    np.testing.assert_array_equal(splits.x_test, build.load_dataset(cfg.dataset, seed=cfg.seed).x_test)
    # A data attack poisons the client's partition, which holds no validation example.
    attacked = cfg.replace(attack="label-flip", byzantine_fraction=0.2)
    x_bad, _ = build.poisoned_client_data(attacked, 1)
    np.testing.assert_array_equal(x_bad.numpy(), splits.x_train[build.client_indices(attacked, 1)])


def test_the_validation_split_is_drawn_first_and_the_root_set_from_what_it_leaves():
    cfg = cfg_of(seed=3)
    num_train = build.load_splits(cfg).num_train
    val = holdout_split(num_train, 150, 3, "validation", name="validation-size")
    np.testing.assert_array_equal(build.validation_indices(cfg), val.held_out)
    drawn = holdout_split(len(val.rest), 100, 3, "root-set", name="root-size")
    np.testing.assert_array_equal(build.root_indices(cfg), val.rest[drawn.held_out])


def test_validation_size_zero_keeps_the_root_set_and_partitions_of_today():
    for strategy in ("fltrust", "mean-sgd"):
        cfg = cfg_of(strategy=strategy, validation_size=0)
        assert cfg == cfg_of(strategy=strategy).replace(validation_size=0) and RunConfig().validation_size == 0
        labels = build.load_splits(cfg).y_train
        assert build.validation_indices(cfg).size == 0 and len(build.validation_data(cfg)[0]) == 0
        if strategy == "fltrust":  # the root set of the whole split, the clients split the rest
            root = holdout_split(len(labels), 100, cfg.seed, "root-set", name="root-size")
            np.testing.assert_array_equal(build.root_indices(cfg), root.held_out)
            want = [root.rest[p] for p in partition(labels[root.rest], cfg.num_clients, partitioner="iid", seed=0)]
        else:
            want = partition(labels, cfg.num_clients, partitioner="iid", seed=cfg.seed)
        for p in range(cfg.num_clients):
            np.testing.assert_array_equal(build.client_indices(cfg, p), want[p])


def test_a_validation_split_changes_the_partitions_it_is_taken_from():
    cfg = cfg_of(strategy="mean-sgd")
    assert not np.array_equal(build.client_indices(cfg, 0), build.client_indices(cfg.replace(validation_size=0), 0))


def test_the_same_seed_draws_the_same_validation_split_and_another_seed_another():
    cfg = cfg_of()
    first = build.validation_indices(cfg).copy()
    build._held_out.cache_clear()  # a fresh process draws alike
    np.testing.assert_array_equal(build.validation_indices(cfg), first)
    np.testing.assert_array_equal(build.validation_indices(cfg.replace(strategy="mean-sgd")), first)
    assert not np.array_equal(build.validation_indices(cfg.replace(seed=1)), first)
    # Its own stream: not the root set's draw of the same size.
    num_train = build.load_splits(cfg).num_train
    assert not np.array_equal(holdout_split(num_train, 150, 0, "root-set").held_out, first)
    assert len(build.validation_indices(cfg.replace(validation_size=7))) == 7


# ------------------------------------------------------------------------------------ the errors
def test_too_large_a_validation_split_is_a_config_error_naming_the_keys():
    with pytest.raises(ConfigError, match="validation-size must be >= 0"):
        RunConfig(validation_size=-1)
    # digits: 1437 training examples, at most 718 held out in all.
    both = cfg_of(validation_size=650)
    message = r"validation-size=650 \+ root-size=100 = 750 is more than 0.5 of the 1437 training examples"
    for call in (build.validation_indices, build.root_indices, lambda c: build.client_indices(c, 0),
                 lambda c: make_strategy(c, warn=False)):
        with pytest.raises(ConfigError, match=message):
            call(both)
    alone = cfg_of(strategy="mean-sgd", validation_size=800)
    for call in (build.validation_indices, lambda c: build.client_indices(c, 0), lambda c: make_strategy(c, warn=False)):
        with pytest.raises(ConfigError, match="validation-size=800 is more than 0.5 of the 1437 training examples"):
            call(alone)
    # Each alone fits; the plain strategy holds no root set, so 650 is fine there.
    assert len(build.validation_indices(both.replace(strategy="mean-sgd"))) == 650


# ------------------------------------------------------------------------------------ the metrics
def _by_hand(cfg, x, data):
    model = build.build_model(cfg)
    set_flat_params(model, x)
    loss, accuracy = evaluate_model(model, *data)
    return accuracy, loss


def test_a_run_records_validation_accuracy_and_loss_of_each_rounds_model():
    cfg = cfg_of(rounds=3)
    models = []
    results = run_inprocess(cfg, after_round=lambda s, r: models.append(s.x.detach().cpu().clone()), warn=False)
    rounds = results["rounds"]
    assert len(rounds) == 3 == len(models)
    for record in rounds:
        assert isinstance(record["val_accuracy"], float) and 0.0 <= record["val_accuracy"] <= 1.0
        assert isinstance(record["val_loss"], float) and math.isfinite(record["val_loss"])
    splits = build.load_splits(cfg)
    test = (torch.from_numpy(splits.x_test), torch.from_numpy(splits.y_test))
    for record, x in zip(rounds, models):
        # The validation metrics are the round's model on the validation split, the others on test.
        assert (record["val_accuracy"], record["val_loss"]) == _by_hand(cfg, x, build.validation_data(cfg))
        assert (record["accuracy"], record["loss"]) == _by_hand(cfg, x, test)
        assert record["val_loss"] != record["loss"]
    x0 = flat_params(build.build_model(cfg))
    initial = results["initial"]
    assert set(initial) == {"accuracy", "loss", "val_accuracy", "val_loss"}
    assert (initial["val_accuracy"], initial["val_loss"]) == _by_hand(cfg, x0, build.validation_data(cfg))
    # Without a validation split the records carry no validation metrics.
    plain = run_inprocess(cfg.replace(validation_size=0, rounds=1), warn=False)
    assert "val_accuracy" not in plain["rounds"][0] and "val_accuracy" not in plain["initial"]


def test_a_resumed_run_keeps_and_goes_on_recording_the_validation_metrics(tmp_path):
    cfg = cfg_of(strategy="mean-sgd", rounds=3)
    straight = run_inprocess(cfg, warn=False)
    ckpt = str(tmp_path / "ckpt")
    run_inprocess(cfg.replace(rounds=2, checkpoint_dir=ckpt), warn=False)
    resumed = run_inprocess(cfg.replace(checkpoint_dir=ckpt, resume=True), warn=False)
    keys = ("round", "accuracy", "loss", "val_accuracy", "val_loss")
    assert [[r[k] for k in keys] for r in resumed["rounds"]] == [[r[k] for k in keys] for r in straight["rounds"]]
    assert resumed["initial"] == straight["initial"]


def test_the_message_api_records_the_same_validation_metrics():
    cfg = cfg_of(rounds=2)
    keys = ("accuracy", "val_accuracy", "val_loss")
    legacy, message = run_inprocess(cfg, warn=False), run_inprocess(cfg.replace(api="message"), warn=False)
    assert [[r[k] for k in keys] for r in message["rounds"]] == [[r[k] for k in keys] for r in legacy["rounds"]]
    assert message["initial"] == legacy["initial"] and "val_loss" in message["initial"]
