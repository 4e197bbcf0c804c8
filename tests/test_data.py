"""Datasets: in-package sets, on-disk loaders (IDX, CIFAR-10 pickles, svmlight) and the registry."""

from __future__ import annotations

import gzip
import pickle
import sys

import numpy as np
import pytest

from fedrobust.data import DATASETS, DatasetSplits, load_dataset, register_dataset
from fedrobust.data.idx import read_idx

EXPECTED_NAMES = {"mnist5k", "digits", "breast-cancer", "mnist", "fashion-mnist", "cifar10", "a9a", "w8a", "libsvm",
                  "hf:"}  # hf: is the family hf:<name-or-folder> (tests/test_hf_dataset.py)


def check_splits(ds: DatasetSplits, name, input_shape, num_classes):
    assert ds.name == name
    assert ds.input_shape == input_shape and ds.num_classes == num_classes
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.shape[1:] == input_shape and x.shape[0] == y.shape[0]
        assert y.min() >= 0 and y.max() < num_classes
        assert np.isfinite(x).all()


def test_registry_names():
    assert EXPECTED_NAMES <= set(DATASETS)


# ---------------------------------------------------------------- in-package sets


@pytest.mark.parametrize(
    "name, input_shape, num_classes, n_train, n_test",
    [
        ("mnist5k", (1, 28, 28), 10, 4000, 1000),
        ("digits", (1, 8, 8), 10, 1437, 360),
        ("breast-cancer", (30,), 2, 455, 114),
    ],
)
def test_in_package_sets_shapes_and_determinism(name, input_shape, num_classes, n_train, n_test):
    ds = load_dataset(name, seed=0)
    check_splits(ds, name, input_shape, num_classes)
    assert (ds.num_train, ds.num_test) == (n_train, n_test)
    # every class appears in both splits in (almost) the same proportion: stratified
    tr = np.bincount(ds.y_train, minlength=num_classes) / ds.num_train
    te = np.bincount(ds.y_test, minlength=num_classes) / ds.num_test
    assert np.abs(tr - te).max() < 0.02
    again = load_dataset(name, seed=0)
    np.testing.assert_array_equal(ds.x_train, again.x_train)
    np.testing.assert_array_equal(ds.y_test, again.y_test)
    other = load_dataset(name, seed=1)
    assert not np.array_equal(ds.y_train, other.y_train) or not np.array_equal(ds.x_train, other.x_train)


def test_mnist5k_uses_mnist_normalisation():
    ds = load_dataset("mnist5k", seed=0)
    background = (0.0 - 0.1307) / 0.3081
    assert ds.x_train.min() == pytest.approx(background, abs=1e-5)
    assert ds.x_train.max() == pytest.approx((1.0 - 0.1307) / 0.3081, abs=1e-5)
    assert abs(float(ds.x_train.mean())) < 0.2 and 0.8 < float(ds.x_train.std()) < 1.2
    assert np.bincount(ds.y_train).tolist() == [400] * 10


def test_train_statistics_standardisation():
    bc = load_dataset("breast-cancer", seed=3)
    np.testing.assert_allclose(bc.x_train.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(bc.x_train.std(axis=0), 1.0, atol=1e-3)
    dg = load_dataset("digits", seed=3)
    assert float(dg.x_train.mean()) == pytest.approx(0.0, abs=1e-4)
    assert float(dg.x_train.std()) == pytest.approx(1.0, abs=1e-3)


# ---------------------------------------------------------------- IDX (MNIST, Fashion-MNIST)


def idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    return header + arr.astype(np.uint8).tobytes()


def write_idx_set(folder, gz: bool, n_train=3, n_test=2):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) + 5) % 10,
    }
    folder.mkdir(parents=True, exist_ok=True)
    for fname, arr in arrays.items():
        raw = idx_bytes(arr)
        if gz:
            (folder / (fname + ".gz")).write_bytes(gzip.compress(raw))
        else:
            (folder / fname).write_bytes(raw)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("name, mean, std", [("mnist", 0.1307, 0.3081), ("fashion-mnist", 0.2860, 0.3530)])
def test_idx_files_load_with_values(tmp_path, gz, name, mean, std):
    arrays = write_idx_set(tmp_path, gz)
    ds = load_dataset(name, data_dir=tmp_path)
    check_splits(ds, name, (1, 28, 28), 10)
    expected = (arrays["train-images-idx3-ubyte"][:, None] / 255.0 - mean) / std
    np.testing.assert_allclose(ds.x_train, expected, rtol=1e-5, atol=1e-5)
    assert ds.y_train.tolist() == [0, 1, 2] and ds.y_test.tolist() == [5, 6]
    expected_test = (arrays["t10k-images-idx3-ubyte"][:, None] / 255.0 - mean) / std
    np.testing.assert_allclose(ds.x_test, expected_test, rtol=1e-5, atol=1e-5)


def test_idx_torchvision_layout(tmp_path):
    write_idx_set(tmp_path / "FashionMNIST" / "raw", gz=True)
    assert load_dataset("fashion-mnist", data_dir=tmp_path).num_train == 3
    with pytest.raises(ValueError, match="missing"):
        load_dataset("mnist", data_dir=tmp_path)  # MNIST/raw is empty


def test_read_idx_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(idx_bytes(np.zeros((2, 2)))[:-1])
    with pytest.raises(ValueError, match="header announces"):
        read_idx(short)
    ints = tmp_path / "ints"
    ints.write_bytes(bytes([0, 0, 0x0C, 1, 0, 0, 0, 2]) + np.array([-1, 7], dtype=">i4").tobytes())
    assert read_idx(ints).tolist() == [-1, 7]


# ---------------------------------------------------------------- CIFAR-10 pickles


def write_cifar(folder):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    batches = {}
    for i, fname in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        data = rng.integers(0, 256, (2, 3072)).astype(np.uint8)
        labels = [i % 10, (i + 3) % 10]
        with open(folder / fname, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": fname.encode()}, f)
        batches[fname] = (data, labels)
    return batches


def test_cifar10_pickles_load_with_values(tmp_path):
    batches = write_cifar(tmp_path / "cifar-10-batches-py")
    ds = load_dataset("cifar10", data_dir=tmp_path)
    check_splits(ds, "cifar10", (3, 32, 32), 10)
    assert (ds.num_train, ds.num_test) == (10, 2)
    assert ds.y_train.tolist() == [0, 3, 1, 4, 2, 5, 3, 6, 4, 7] and ds.y_test.tolist() == [5, 8]
    data, _ = batches["data_batch_2"]
    # row layout: 1024 red, 1024 green, 1024 blue values, each row-major 32x32
    green_pixel = data[1, 1024 + 5 * 32 + 7]
    assert ds.x_train[3, 1, 5, 7] == pytest.approx((green_pixel / 255.0 - 0.4822) / 0.2435, abs=1e-5)
    mean, std = np.array([0.4914, 0.4822, 0.4465]), np.array([0.2470, 0.2435, 0.2616])
    test_data, _ = batches["test_batch"]
    expected = (test_data.reshape(2, 3, 32, 32) / 255.0 - mean[:, None, None]) / std[:, None, None]
    np.testing.assert_allclose(ds.x_test, expected, rtol=1e-5, atol=1e-5)
    # the batches may also sit directly in data_dir
    assert load_dataset("cifar10", data_dir=tmp_path / "cifar-10-batches-py").num_test == 2


# ---------------------------------------------------------------- svmlight (a9a, w8a, generic)


def test_a9a_svmlight_with_fixed_feature_count(tmp_path):
    (tmp_path / "a9a").write_text("-1 3:1 11:1 123:1\n+1 1:1 5:0.5\n+1 2:1\n")
    (tmp_path / "a9a.t").write_text("-1 1:1\n+1 7:0.25\n")  # test file never reaches feature 123
    ds = load_dataset("a9a", data_dir=tmp_path)
    check_splits(ds, "a9a", (123,), 2)
    assert ds.y_train.tolist() == [0, 1, 1] and ds.y_test.tolist() == [0, 1]
    assert ds.x_train[0, [2, 10, 122]].tolist() == [1.0, 1.0, 1.0] and ds.x_train[0].sum() == 3.0
    assert ds.x_train[1, 4] == 0.5 and ds.x_test[1, 6] == 0.25 and ds.x_test.shape == (2, 123)


def test_w8a_has_300_features(tmp_path):
    (tmp_path / "w8a").write_text("+1 300:1\n-1 1:1\n")
    (tmp_path / "w8a.t").write_text("-1 2:1\n")
    ds = load_dataset("w8a", data_dir=tmp_path)
    assert ds.input_shape == (300,) and ds.x_train[0, 299] == 1.0 and ds.y_train.tolist() == [1, 0]


def test_generic_libsvm(tmp_path):
    (tmp_path / "tr.svm").write_text("".join(f"{c} 1:{i} 2:1\n" for i, c in enumerate([1, 2, 3] * 10)))
    (tmp_path / "te.svm").write_text("3 1:9\n1 2:2\n")
    ds = load_dataset("libsvm", data_dir=tmp_path, train_file="tr.svm", test_file="te.svm")
    assert ds.num_classes == 3 and ds.y_test.tolist() == [2, 0] and ds.x_test[0].tolist() == [9.0, 0.0]
    split = load_dataset("libsvm", data_dir=tmp_path, train_file="tr.svm", seed=0)
    assert (split.num_train, split.num_test) == (24, 6) and np.bincount(split.y_test).tolist() == [2, 2, 2]
    # the seeded split is a fixed function of the seed
    again = load_dataset("libsvm", data_dir=tmp_path, train_file="tr.svm", seed=0)
    np.testing.assert_array_equal(split.x_train, again.x_train)
    with pytest.raises(ValueError, match="train_file"):
        load_dataset("libsvm", data_dir=tmp_path)


def test_generic_libsvm_through_the_run_key_dataset_params(tmp_path):
    from fedrobust.config import RunConfig
    from fedrobust.run.build import load_splits

    (tmp_path / "tr.svm").write_text("".join(f"{c} 1:{i} 2:1\n" for i, c in enumerate([1, 2] * 10)))
    cfg = RunConfig(dataset="libsvm", data_dir=str(tmp_path), dataset_params="train_file=tr.svm,n_features=3")
    ds = load_splits(cfg)
    assert ds.input_shape == (3,) and (ds.num_train, ds.num_test) == (16, 4)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "name, expected_files",
    [
        (
            "mnist",
            ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"],
        ),
        ("fashion-mnist", ["train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]),
        ("cifar10", ["data_batch_1", "data_batch_5", "test_batch"]),
        ("a9a", ["a9a", "a9a.t"]),
        ("w8a", ["w8a", "w8a.t"]),
    ],
)
def test_missing_files_give_one_line_error(tmp_path, name, expected_files):
    with pytest.raises(ValueError) as info:
        load_dataset(name, data_dir=tmp_path)
    message = str(info.value)
    assert "\n" not in message and str(tmp_path) in message
    for fname in expected_files:
        assert fname in message


def test_partial_idx_set_names_only_missing_files(tmp_path):
    write_idx_set(tmp_path, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte") as info:
        load_dataset("mnist", data_dir=tmp_path)
    assert "train-images" not in str(info.value)


@pytest.mark.parametrize("name", ["mnist", "cifar10", "a9a"])
def test_file_datasets_need_data_dir(name):
    with pytest.raises(ValueError, match="data-dir is required"):
        load_dataset(name)


def test_download_without_torchvision_names_files(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # makes `import torchvision` fail, never downloads
    monkeypatch.setitem(sys.modules, "torchvision.datasets", None)
    with pytest.raises(ImportError, match="torchvision") as info:
        load_dataset("mnist", data_dir=tmp_path, download=True)
    assert "\n" not in str(info.value) and str(tmp_path) in str(info.value)


def test_argument_checks():
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="seed"):
        load_dataset("digits", seed=-1)
    with pytest.raises(TypeError, match="download"):
        load_dataset("digits", download="yes")
    with pytest.raises(ValueError, match="dataset 'digits' takes no parameter 'n_features'; it takes: \\(none\\)"):
        load_dataset("digits", n_features=3)
    with pytest.raises(ValueError, match="it takes: train_file, test_file, n_features"):
        load_dataset("libsvm", train_file="x", label_column="y")
    load_dataset("digits", n_features=None)  # None is the default: no option given


def test_dataset_splits_validates():
    x, y = np.zeros((2, 3), np.float32), np.array([0, 1], dtype=np.int64)
    with pytest.raises(TypeError, match="float32"):
        DatasetSplits("t", x.astype(np.float64), y, x, y, 2, (3,))
    with pytest.raises(ValueError, match="differ in length"):
        DatasetSplits("t", x, y[:1], x, y, 2, (3,))
    with pytest.raises(ValueError, match="input_shape"):
        DatasetSplits("t", x, y, x, y, 2, (4,))
    with pytest.raises(ValueError, match=r"\[0, 0\]"):
        DatasetSplits("t", x, y, x, y, 1, (3,))
    ds = DatasetSplits("t", x, y, x, y, 2, (3,))
    with pytest.raises(AttributeError):
        ds.name = "other"  # frozen


def test_register_dataset():
    x, y = np.ones((3, 2), np.float32), np.array([0, 1, 0], dtype=np.int64)
    register_dataset("tiny-test", lambda data_dir, seed, download: DatasetSplits("tiny-test", x, y, x, y, 2, (2,)))
    try:
        assert load_dataset("tiny-test").num_train == 3
        with pytest.raises(ValueError, match="already registered"):
            register_dataset("tiny-test", lambda *a: None)
    finally:
        del DATASETS["tiny-test"]
