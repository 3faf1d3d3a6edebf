"""cs231n.data_utils: CIFAR-10 loaders on look-alike files, the offline digits set, demo photos."""
import pickle
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from test_datasets_support import FOLDER, batch_labels, pattern, write_cifar_folder

from cs231n import data_utils as du

ROWS = 30  # images a batch in the look-alike CIFAR-10: a training pool of 150, 30 test images


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    return write_cifar_folder(tmp_path_factory.mktemp("cifar"), ROWS)


@pytest.fixture(autouse=True)
def no_dataset_env(monkeypatch):
    monkeypatch.delenv(du.DATASET_ENV, raising=False)


def test_load_CIFAR_batch_keeps_channel_major_pixels_and_labels(cifar_dir):
    X, y = du.load_CIFAR_batch(cifar_dir / "data_batch_2")
    assert X.shape == (ROWS, 3, 32, 32) and X.dtype == np.uint8
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, batch_labels(1, ROWS))
    np.testing.assert_array_equal(X, pattern(y))


def test_load_CIFAR10_concatenates_the_five_training_batches(cifar_dir, capsys):
    X_train, y_train, X_test, y_test = du.load_CIFAR10(cifar_dir)
    assert X_train.shape == (5 * ROWS, 3, 32, 32) and X_test.shape == (ROWS, 3, 32, 32)
    np.testing.assert_array_equal(y_train, sum((batch_labels(i, ROWS) for i in range(5)), []))
    np.testing.assert_array_equal(y_test, batch_labels(5, ROWS))
    assert "dataset = CIFAR-10" in capsys.readouterr().out


def test_missing_cifar_names_make_data(tmp_path):
    with pytest.raises(du.DatasetNotFoundError, match="make data") as info:
        du.get_CIFAR10_data(cifar10_dir=tmp_path / FOLDER)
    assert isinstance(info.value, FileNotFoundError) and "CS231N_DATASET=digits" in str(info.value)


@pytest.mark.parametrize("content", [
    b"not a pickle",
    pickle.dumps({b"labels": [1, 2]}),
    pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [1, 2]}),
    pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}),
], ids=["garbage", "no-data", "wrong-width", "label-count"])
def test_damaged_batch_is_a_clear_error(content, tmp_path):
    (tmp_path / "data_batch_1").write_bytes(content)
    with pytest.raises(ValueError, match="make data"):
        du.load_CIFAR_batch(tmp_path / "data_batch_1")


def test_cifar_splits_follow_the_official_order_and_subtract_the_training_mean(cifar_dir):
    data = du.get_CIFAR10_data(100, 40, 20, cifar10_dir=cifar_dir, dtype=np.float64)
    X_pool, y_pool, X_test, y_test = du.load_CIFAR10(cifar_dir, verbose=False)
    mean = X_pool[:100].astype(np.float64).sum(axis=0) / 100
    np.testing.assert_allclose(data["X_train"], X_pool[:100] - mean)
    np.testing.assert_allclose(data["X_val"], X_pool[100:140] - mean)
    np.testing.assert_allclose(data["X_test"], X_test[:20] - mean)
    np.testing.assert_array_equal(data["y_val"], y_pool[100:140])
    assert all(data[k].dtype == np.float64 for k in ("X_train", "X_val", "X_test"))


def test_no_mean_subtraction_returns_raw_pixels(cifar_dir):
    data = du.get_CIFAR10_data(10, 5, 5, subtract_mean=False, cifar10_dir=cifar_dir)
    np.testing.assert_array_equal(data["X_train"], pattern(data["y_train"]).astype(np.float32))


@pytest.mark.parametrize("sizes, message", [
    (dict(num_training=49500), "49500 + 1000 = 50500"),
    (dict(num_test=10001), "num_test = 10001"),
    (dict(num_training=0), ">= 1"),
    (dict(num_validation=-1), ">= 0"),
])
def test_cifar_split_sizes_are_checked_with_the_arithmetic(sizes, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        du.split_sizes("cifar10", **sizes)


def test_split_size_must_be_an_int():
    with pytest.raises(TypeError, match="int"):
        du.split_sizes("digits", num_training=100.0)


def test_default_splits():
    assert du.split_sizes("cifar10") == (49000, 1000, 1000)
    assert du.split_sizes("digits") == (1297, 250, 250)
    assert du.split_sizes("digits", num_test=97) == (1450, 250, 97)


@pytest.mark.parametrize("sizes, message", [
    (dict(num_training=1500), r"1500 \+ 250 \+ 250 = 2000"),
    (dict(num_validation=1000, num_test=900), r"1000 \+ 900 = 1900 leaves none"),
])
def test_digits_split_sizes_are_checked_with_the_arithmetic(sizes, message):
    with pytest.raises(ValueError, match=message):
        du.get_CIFAR10_data(dataset="digits", **sizes)


def test_digits_look_like_cifar(capsys):
    data = du.get_CIFAR10_data(dataset="digits")
    assert "DIGITS, not CIFAR-10" in capsys.readouterr().out
    assert {k: v.shape for k, v in data.items()} == {
        "X_train": (1297, 3, 32, 32), "y_train": (1297,), "X_val": (250, 3, 32, 32),
        "y_val": (250,), "X_test": (250, 3, 32, 32), "y_test": (250,)}
    assert data["X_train"].dtype == np.float32 and data["y_train"].dtype == np.int64
    for key in ("y_train", "y_val", "y_test"):
        assert set(data[key].tolist()) == set(range(10))
    np.testing.assert_allclose(data["X_train"].mean(axis=0), 0, atol=1e-3)


def test_digits_are_the_sklearn_images_upsampled():
    from sklearn.datasets import load_digits

    X, y = du.load_digits32(verbose=False)
    digits = load_digits()
    assert X.shape == (1797, 3, 32, 32) and X.dtype == np.float32
    np.testing.assert_array_equal(y, digits.target)
    assert X.min() >= 0 and X.max() <= 255 and X.max() > 250
    np.testing.assert_array_equal(X[:, 0], X[:, 1])
    np.testing.assert_array_equal(X[:, 0], X[:, 2])
    # each 4x4 block of the upsampled image averages to (nearly) the 8x8 pixel it came from
    blocks = X[:, 0].reshape(1797, 8, 4, 8, 4).mean(axis=(2, 4))
    expected = digits.images * 255 / 16
    assert np.corrcoef(blocks.ravel(), expected.ravel())[0, 1] > 0.97


def _rows(array):
    return {row.tobytes() for row in array.reshape(len(array), 3 * 32 * 32)}


@given(n_val=st.integers(0, 400), n_test=st.integers(0, 400), seed=st.integers(0, 2**32 - 1))
def test_digits_splits_are_disjoint_complete_and_seeded(n_val, n_test, seed):
    data = du.get_CIFAR10_data(dataset="digits", num_validation=n_val, num_test=n_test,
                               subtract_mean=False, seed=seed)
    train, val, test = (_rows(data[k]) for k in ("X_train", "X_val", "X_test"))
    assert (len(train), len(val), len(test)) == (1797 - n_val - n_test, n_val, n_test)
    assert not (train & val or train & test or val & test)  # the digits hold no duplicate
    X, _ = du.load_digits32(verbose=False)
    assert train | val | test == _rows(X)
    again = du.get_CIFAR10_data(dataset="digits", num_validation=n_val, num_test=n_test,
                                subtract_mean=False, seed=seed)
    for key in data:
        np.testing.assert_array_equal(data[key], again[key])


def test_digits_seed_changes_the_split():
    a = du.get_CIFAR10_data(dataset="digits", seed=1)
    b = du.get_CIFAR10_data(dataset="digits", seed=2)
    assert not np.array_equal(a["y_train"], b["y_train"])


def test_environment_variable_selects_the_dataset_and_the_argument_wins(monkeypatch, tmp_path,
                                                                       capsys):
    monkeypatch.setenv(du.DATASET_ENV, "digits")
    assert du.get_CIFAR10_data()["X_train"].shape == (1297, 3, 32, 32)
    assert "DIGITS" in capsys.readouterr().out
    with pytest.raises(du.DatasetNotFoundError):
        du.get_CIFAR10_data(dataset="cifar10", cifar10_dir=tmp_path)
    monkeypatch.setenv(du.DATASET_ENV, "imagenet")
    with pytest.raises(ValueError, match=r"\$CS231N_DATASET"):
        du.get_CIFAR10_data()


@pytest.mark.parametrize("name, expected", [("CIFAR-10", "cifar10"), (" Digits", "digits"),
                                            ("cifar_10", "cifar10")])
def test_dataset_names_are_forgiving(name, expected):
    assert du.choose_dataset(name) == expected


def test_unknown_dataset_lists_the_choices():
    with pytest.raises(ValueError, match="cifar10.*digits"):
        du.choose_dataset("mnist")


def test_class_names():
    assert du.class_names("cifar10")[3] == "cat" and du.class_names("digits")[7] == "7"


def test_demo_images_are_the_cat_and_the_coffee():
    images = du.load_demo_images(200)
    assert images.shape == (2, 3, 200, 200) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 255 and images.std() > 30
    red, green, blue = images.mean(axis=(2, 3)).T
    assert (red > blue).all()  # a ginger cat and a brown coffee: channels are in RGB order
    assert du.load_demo_images((64, 96), dtype=np.float64).shape == (2, 3, 64, 96)


@pytest.mark.parametrize("size", [0, (10,), (10, -1), 2.5, True])
def test_demo_images_reject_bad_sizes(size):
    with pytest.raises(ValueError, match="size must be"):
        du.load_demo_images(size)
