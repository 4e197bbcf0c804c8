"""Hugging Face datasets through flwr-datasets' ``FederatedDataset``: the dataset ``hf:<name-or-folder>``.

Everything here is offline: the datasets are small folders written in ``tmp_path``, both libraries are
switched to offline mode, their caches point into ``tmp_path``, and flwr-datasets' usage event is
replaced by a no-op (it would post to the network and write a file in the home folder).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

datasets = pytest.importorskip("datasets")
Image = pytest.importorskip("PIL.Image")

from fedrobust.config import ConfigError, RunConfig  # noqa: E402
from fedrobust.data import DATASETS, load_dataset, register_dataset  # noqa: E402
from fedrobust.data.registry import dataset_options, dataset_problem  # noqa: E402

N_TRAIN, N_TEST, CLASSES = 60, 30, ("circle", "square", "star")


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """No network, and nothing written outside ``tmp_path``."""
    import datasets.config as hf_config
    import flwr_datasets.federated_dataset as federated_dataset
    import huggingface_hub.constants as hub_constants

    home = tmp_path / "hf-home"
    for key, value in {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_HOME": str(home),
                       "HF_DATASETS_CACHE": str(home / "datasets"), "FLWR_TELEMETRY_ENABLED": "0"}.items():
        monkeypatch.setenv(key, value)
    # Both libraries read these once, when imported (earlier tests may have imported them): set the values read.
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    for name, value in {"HF_HUB_OFFLINE": True, "HF_DATASETS_OFFLINE": True, "HF_CACHE_HOME": str(home),
                        "HF_DATASETS_CACHE": home / "datasets", "HF_MODULES_CACHE": home / "modules",
                        "DOWNLOADED_DATASETS_PATH": home / "datasets" / "downloads",
                        "EXTRACTED_DATASETS_PATH": home / "datasets" / "downloads" / "extracted"}.items():
        monkeypatch.setattr(hf_config, name, value)
    monkeypatch.setattr(federated_dataset, "event", lambda *args, **kwargs: None)


def pixels(n: int, seed: int, channels: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 8x8 uint8 images whose class (0, 1, 2) is a bright band of columns; grey, or ``channels`` last."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    rng.shuffle(labels)
    x = rng.integers(0, 60, (n, 8, 8), dtype=np.uint8)
    for i, c in enumerate(labels):
        x[i, :, 3 * c: 3 * c + 2] += 180
    if channels:
        x = np.repeat(x[..., None], channels, axis=-1)
        x[..., 0] //= 2  # the channels differ
    return x, labels


def image_set(n: int, seed: int, channels: int = 0):
    x, y = pixels(n, seed, channels)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=list(CLASSES))})
    return datasets.Dataset.from_dict({"image": [Image.fromarray(a) for a in x], "label": y.tolist()}, features=features)


def parquet_folder(folder, splits) -> str:
    """Write ``{split: Dataset}`` as ``<split>.parquet`` files, the layout ``datasets.load_dataset`` reads."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, ds in splits.items():
        ds.to_parquet(str(folder / f"{split}.parquet"))
    return str(folder)


@pytest.fixture
def image_folder(tmp_path):
    return parquet_folder(tmp_path / "tiny-images", {"train": image_set(N_TRAIN, 0), "test": image_set(N_TEST, 1)})


def check(ds, n_train, n_test, input_shape, num_classes):
    assert ds.x_train.shape == (n_train, *input_shape) and ds.x_test.shape == (n_test, *input_shape)
    assert ds.x_train.dtype == ds.x_test.dtype == np.float32
    assert ds.y_train.dtype == ds.y_test.dtype == np.int64
    assert ds.input_shape == input_shape and ds.num_classes == num_classes
    assert np.isfinite(ds.x_train).all() and np.isfinite(ds.x_test).all()


# ------------------------------------------------------------------------------------ loading
def test_a_local_parquet_folder_loads_as_normalised_grey_images(image_folder, tmp_path):
    ds = load_dataset(f"hf:{image_folder}", data_dir=tmp_path / "cache")
    assert ds.name == f"hf:{image_folder}"
    check(ds, N_TRAIN, N_TEST, (1, 8, 8), 3)
    raw_train, y_train = pixels(N_TRAIN, 0)
    raw_test, y_test = pixels(N_TEST, 1)
    assert ds.y_train.tolist() == y_train.tolist() and ds.y_test.tolist() == y_test.tolist()  # order kept
    # scaled to [0, 1] by 255, then normalised with the training split's mean and standard deviation
    scaled = raw_train.astype(np.float64) / 255
    mean, std = scaled.mean(), scaled.std()
    np.testing.assert_allclose(ds.x_train[:, 0], (scaled - mean) / std, atol=1e-5)
    np.testing.assert_allclose(ds.x_test[:, 0], (raw_test / 255 - mean) / std, atol=1e-5)
    assert abs(float(ds.x_train.mean())) < 1e-5 and abs(float(ds.x_train.std()) - 1) < 1e-4
    assert (tmp_path / "cache").is_dir()  # data-dir is the cache folder


def test_rgb_images_and_pixel_arrays_are_channels_first(tmp_path):
    rgb = parquet_folder(tmp_path / "rgb", {"train": image_set(30, 0, channels=3), "test": image_set(9, 1, channels=3)})
    ds = load_dataset(f"hf:{rgb}")
    check(ds, 30, 9, (3, 8, 8), 3)
    x, y = pixels(30, 0, channels=3)
    scaled = x.transpose(0, 3, 1, 2) / 255
    for c in range(3):  # each channel normalised with its own statistics
        np.testing.assert_allclose(ds.x_train[:, c], (scaled[:, c] - scaled[:, c].mean()) / scaled[:, c].std(), atol=1e-5)
    # nested lists (H, W, C) of ints, in a column named "img", and a "labels" column of plain ints
    xs, ys = pixels(24, 2, channels=3)
    arrays = datasets.Dataset.from_dict({"img": xs.tolist(), "labels": ys.tolist()})
    folder = parquet_folder(tmp_path / "arrays", {"train": arrays, "test": arrays.select(range(6))})
    ds = load_dataset(f"hf:{folder}")
    check(ds, 24, 6, (3, 8, 8), 3)
    assert ds.y_train.tolist() == ys.tolist()


def test_without_a_test_split_the_train_split_is_split_80_20_with_the_seed(tmp_path):
    folder = parquet_folder(tmp_path / "train-only", {"train": image_set(N_TRAIN, 0)})
    a, b, c = (load_dataset(f"hf:{folder}", seed=s) for s in (0, 0, 1))
    check(a, 48, 12, (1, 8, 8), 3)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_test, c.x_test)
    assert sorted(np.bincount(a.y_test).tolist()) == [4, 4, 4]  # stratified by label


def test_a_save_to_disk_folder_loads_too(tmp_path):
    folder = tmp_path / "saved"
    datasets.DatasetDict({"train": image_set(N_TRAIN, 0), "test": image_set(N_TEST, 1)}).save_to_disk(str(folder))
    ds = load_dataset(f"hf:{folder}")
    check(ds, N_TRAIN, N_TEST, (1, 8, 8), 3)
    assert ds.y_train.tolist() == pixels(N_TRAIN, 0)[1].tolist()


def test_tabular_columns_string_labels_and_the_dataset_params(tmp_path):
    rng = np.random.default_rng(0)
    def table(n):
        species = rng.choice(["setosa", "versicolor", "virginica"], n)
        return datasets.Dataset.from_dict({"petal": rng.normal(5, 2, n), "sepal": rng.normal(-3, 0.5, n),
                                           "count": rng.integers(0, 9, n), "note": ["x"] * n, "species": species})
    folder = parquet_folder(tmp_path / "table", {"train": table(40), "validation": table(10)})
    with pytest.raises(ValueError, match="could not be loaded.*'fit' is not present"):
        load_dataset(f"hf:{folder}", train_split="fit")
    with pytest.raises(ValueError, match="no label column found.*columns: petal, sepal, count, note, species"):
        load_dataset(f"hf:{folder}")
    ds = load_dataset(f"hf:{folder}", test_split="validation", label_column="species")
    check(ds, 40, 10, (3,), 3)  # the numeric columns; the text column "note" is left out
    np.testing.assert_allclose(ds.x_train.mean(axis=0), 0, atol=1e-5)  # standardised with training statistics
    np.testing.assert_allclose(ds.x_train.std(axis=0), 1, atol=1e-4)
    picked = load_dataset(f"hf:{folder}", test_split="validation", label_column="species", feature_columns="sepal:petal")
    assert picked.input_shape == (2,)
    np.testing.assert_allclose(picked.x_train[:, 0], ds.x_train[:, 1], atol=1e-6)
    # strings are numbered in sorted order
    expected = np.searchsorted(["setosa", "versicolor", "virginica"], datasets.load_dataset(folder)["train"]["species"])
    assert picked.y_train.tolist() == expected.tolist()


def test_the_registry_knows_the_hf_family():
    assert "hf:" in DATASETS and dataset_problem("hf:ylecun/mnist") is None
    assert dataset_options("hf:anything")[0] == ("subset", "train_split", "test_split", "label_column", "feature_columns")
    assert dataset_problem("hf:") and dataset_problem("hf: x") and dataset_problem("hf")
    with pytest.raises(ValueError, match="clashes with the family hf:<name>"):
        register_dataset("hf:mine", lambda data_dir, seed, download: None)


# ------------------------------------------------------------------------------------ errors
def test_a_dataset_that_cannot_be_found_offline_is_one_line(tmp_path):
    with pytest.raises(ValueError) as info:
        load_dataset("hf:nobody/no-such-dataset", data_dir=tmp_path / "cache")
    message = str(info.value)
    assert message.startswith("dataset 'hf:nobody/no-such-dataset' could not be loaded through "
                              "flwr_datasets.FederatedDataset: ")
    assert "\n" not in message and "offline" in message.lower()
    with pytest.raises(ValueError, match="could not be loaded.*FileNotFoundError") as info:
        load_dataset(f"hf:{tmp_path / 'empty'}/")
    assert "\n" not in str(info.value)


def test_missing_splits_and_columns_name_what_there_is(image_folder):
    with pytest.raises(ValueError, match="'validation' is not present.*'train', 'test'"):
        load_dataset(f"hf:{image_folder}", test_split="validation")
    with pytest.raises(ValueError, match="has no column 'y' \\(label_column\\); columns: image, label"):
        load_dataset(f"hf:{image_folder}", label_column="y")
    with pytest.raises(ValueError, match="has no column pixels \\(feature_columns\\)"):
        load_dataset(f"hf:{image_folder}", feature_columns="pixels")
    with pytest.raises(ValueError, match="takes no parameter 'colour'; it takes: subset, train_split"):
        load_dataset(f"hf:{image_folder}", colour="red")


def test_the_run_keys_are_checked_with_the_config():
    assert RunConfig(dataset="hf:ylecun/mnist", dataset_params="label_column=label,test_split=test")
    for keys, expected in [
        (dict(dataset="hf:"), "dataset 'hf:' names no dataset after 'hf:'; write hf:<name-or-folder>"),
        (dict(dataset="nope"), "dataset must be one of mnist5k, digits, "),
        (dict(dataset="hf:x", dataset_params="label=y"),
         "dataset-params: dataset 'hf:x' takes no parameter 'label'; it takes: subset, train_split, test_split, "
         "label_column, feature_columns"),
        (dict(dataset="digits", dataset_params="label_column=y"),
         "dataset-params: dataset 'digits' takes no parameter 'label_column'; it takes: (none)"),
        (dict(dataset="mnist5k", dataset_params="oops"), "dataset-params: expected name=value pairs"),
    ]:
        with pytest.raises(ConfigError) as info:
            RunConfig(**keys)
        assert str(info.value).startswith(expected) and "\n" not in str(info.value), str(info.value)
    assert "or hf:<name-or-folder>; got 'nope'" in _config_error(dataset="nope")


def _config_error(**keys) -> str:
    with pytest.raises(ConfigError) as info:
        RunConfig(**keys)
    return str(info.value)


def test_the_cli_reports_a_missing_dataset_in_one_line(tmp_path, capsys):
    from fedrobust.cli import main

    assert main(["run", "--dataset", "hf:nobody/no-such-dataset", "--data-dir", str(tmp_path / "cache"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fedrobust: error: dataset 'hf:nobody/no-such-dataset' could not be loaded")


# ------------------------------------------------------------------------------------ a run
def test_a_two_round_run_trains_on_it(image_folder, tmp_path):
    from fedrobust.run.inprocess import run_inprocess

    cfg = RunConfig(strategy="fedavg", dataset=f"hf:{image_folder}", data_dir=str(tmp_path / "cache"),
                    dataset_params="label_column=label", model="logistic", num_clients=3, clients_per_round=3,
                    rounds=2, local_steps=5, lr=0.5, batch_size=8, device="cpu", partitioner="pathological",
                    partitioner_params="num_classes_per_partition=2,class_assignment_mode=deterministic")
    results = run_inprocess(cfg, warn=False)
    assert results["config"]["dataset"] == f"hf:{image_folder}"
    assert len(results["rounds"]) == 2 and all(math.isfinite(r["loss"]) for r in results["rounds"])
    assert results["rounds"][-1]["loss"] < results["initial"]["loss"]  # it learnt something
