"""The assignment's data: CIFAR-10, an offline stand-in with the same shapes, and demo photos.

`get_CIFAR10_data` is what the notebooks call. It serves CIFAR-10 (fetched by `make data`) or,
with `dataset="digits"` or the environment variable CS231N_DATASET=digits, scikit-learn's bundled
handwritten digits made to look like CIFAR-10: 10 classes, images (N, 3, 32, 32), pixel values
0-255. It always prints which one it serves, so nobody mistakes digits for CIFAR-10.
`load_demo_images` gives two photos that ship with scikit-image, for the convolution demo.
"""
import os
import pickle
from functools import lru_cache
from pathlib import Path

import numpy as np

DATASET_ENV = "CS231N_DATASET"
DATASETS = ("cifar10", "digits")
DEFAULT_CIFAR10_DIR = Path(__file__).resolve().parent.parent / "datasets" / "cifar-10-batches-py"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch"
CLASS_NAMES = {
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                "truck"),
    "digits": tuple(str(d) for d in range(10)),
}
# (validation, test) sizes when not given; training defaults to all that is left of its pool
DEFAULT_SPLITS = {"cifar10": (1000, 1000), "digits": (250, 250)}
DESCRIPTIONS = {
    "cifar10": "CIFAR-10",
    "digits": ("DIGITS, not CIFAR-10 (scikit-learn's 8x8 handwritten digits upsampled to 32x32, "
               f"grey in 3 channels; {DATASET_ENV}=cifar10 for CIFAR-10)"),
}


class DatasetNotFoundError(FileNotFoundError):
    """CIFAR-10 is not on disk; the message says how to get it."""


def choose_dataset(dataset=None):
    """Name of the dataset to use: `dataset`, else $CS231N_DATASET, else "cifar10".

    Inputs: dataset, str or None ("cifar10" or "digits", any case; "cifar-10" is accepted).
    Returns: str, one of DATASETS.
    """
    name = dataset if dataset is not None else os.environ.get(DATASET_ENV) or "cifar10"
    if not isinstance(name, str):
        raise TypeError(f"dataset must be a string such as 'cifar10' or 'digits', got {name!r}")
    key = name.strip().lower().replace("-", "").replace("_", "")
    if key not in DATASETS:
        source = "the dataset argument" if dataset is not None else f"${DATASET_ENV}"
        raise ValueError(f"unknown dataset {name!r} (from {source}); choose one of {DATASETS}")
    return key


def class_names(dataset=None):
    """The 10 class names of a dataset (see choose_dataset), as a tuple of str, label order."""
    return CLASS_NAMES[choose_dataset(dataset)]


def load_CIFAR_batch(filename):
    """Load one CIFAR-10 batch file (a pickled dict with b'data' and b'labels').

    Inputs: filename, path of e.g. data_batch_1 or test_batch.
    Returns: X, uint8 array (N, 3, 32, 32) (channel, row, column); y, int64 array (N,) in 0..9.
    """
    with open(filename, "rb") as f:
        try:
            batch = pickle.load(f, encoding="bytes")
        except (pickle.UnpicklingError, EOFError, ValueError) as error:
            raise ValueError(f"{filename} is not a CIFAR-10 batch ({error}); delete the "
                             "cifar-10-batches-py folder and run `make data` again") from error
    try:
        data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"], dtype=np.int64)
    except (KeyError, TypeError) as error:
        raise ValueError(f"{filename} lacks b'data' or b'labels'; it is not a CIFAR-10 batch; "
                         "delete the cifar-10-batches-py folder and run `make data` again") from error
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 \
            or labels.shape != (data.shape[0],):
        raise ValueError(f"{filename}: expected b'data' uint8 (N, 3072) and N labels, got "
                         f"{data.dtype} {data.shape} and {labels.shape[0]} labels; delete the "
                         "cifar-10-batches-py folder and run `make data` again")
    return data.reshape(-1, 3, 32, 32), labels


def load_CIFAR10(root=None, verbose=True):
    """Load all of CIFAR-10 from its python-version folder.

    Inputs: root, the cifar-10-batches-py folder (default: datasets/ of this checkout);
    verbose: print what is loaded.
    Returns: X_train uint8 (50000, 3, 32, 32), y_train int64 (50000,),
    X_test uint8 (10000, 3, 32, 32), y_test int64 (10000,).
    Raises DatasetNotFoundError (a FileNotFoundError) naming `make data` if files are missing.
    """
    root = Path(root) if root is not None else DEFAULT_CIFAR10_DIR
    missing = [n for n in CIFAR10_TRAIN_FILES + (CIFAR10_TEST_FILE,) if not (root / n).is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"CIFAR-10 is not in {root} (missing {', '.join(missing)}). Run `make data` (or "
            f"python datasets/get_datasets.py) to download it, or use the offline digits set: "
            f"{DATASET_ENV}=digits, or get_CIFAR10_data(dataset='digits').")
    if verbose:
        print(f"load_CIFAR10: dataset = CIFAR-10, from {root}")
    parts = [load_CIFAR_batch(root / name) for name in CIFAR10_TRAIN_FILES]
    X_test, y_test = load_CIFAR_batch(root / CIFAR10_TEST_FILE)
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            X_test, y_test)


@lru_cache(maxsize=1)
def _digits32():
    from skimage.transform import resize
    from sklearn.datasets import load_digits

    digits = load_digits()
    grey = resize(digits.images * (255.0 / 16.0), (len(digits.images), 32, 32), order=1,
                  mode="edge", anti_aliasing=False, preserve_range=True)
    X = np.repeat(grey[:, None].astype(np.float32), 3, axis=1)
    X.setflags(write=False)
    y = digits.target.astype(np.int64)
    y.setflags(write=False)
    return X, y


def load_digits32(verbose=True):
    """scikit-learn's 1797 handwritten digits as CIFAR-10-like images; needs no network.

    The 8x8 images (values 0..16) are scaled to 0..255, upsampled bilinearly to 32x32 and
    copied into 3 equal channels.
    Inputs: verbose, print what is loaded.
    Returns: X, float32 array (1797, 3, 32, 32) in [0, 255]; y, int64 array (1797,) in 0..9.
    """
    if verbose:
        print(f"load_digits32: dataset = {DESCRIPTIONS['digits']}")
    X, y = _digits32()
    return X.copy(), y.copy()


def _check_size(name, value, low=0):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int or None, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def split_sizes(dataset, num_training=None, num_validation=None, num_test=None):
    """Validated (num_training, num_validation, num_test) for a dataset, defaults filled in.

    CIFAR-10: training and validation come from the 50000 training images, test from the 10000
    test images; defaults 49000 / 1000 / 1000. Digits: all three come from its 1797 images;
    defaults 1297 / 250 / 250. num_training=None takes all that the others leave.
    Raises ValueError, showing the sum, when the request does not fit.
    """
    dataset = choose_dataset(dataset)
    val = DEFAULT_SPLITS[dataset][0] if num_validation is None else num_validation
    test = DEFAULT_SPLITS[dataset][1] if num_test is None else num_test
    val, test = _check_size("num_validation", val), _check_size("num_test", test)
    if dataset == "cifar10":
        if test > 10000:
            raise ValueError(f"CIFAR-10 has 10000 test images but num_test = {test}; "
                             "ask for at most 10000")
        pool, what, names, others = 50000, "CIFAR-10 has 50000 training images", \
            ["num_validation"], [val]
    else:
        pool, what, names, others = 1797, "digits has 1797 images", \
            ["num_validation", "num_test"], [val, test]
    taken = sum(others)
    if taken >= pool:
        raise ValueError(f"{what}: {' + '.join(names)} = {' + '.join(map(str, others))} = "
                         f"{taken} leaves none for training; ask for fewer")
    train = pool - taken if num_training is None else _check_size("num_training", num_training, 1)
    if train + taken > pool:
        terms = " + ".join(["num_training"] + names)
        values = " + ".join(str(v) for v in [train] + others)
        raise ValueError(f"{what}: {terms} = {values} = {train + taken}, but it must be at most "
                         f"{pool}; ask for fewer, or leave "
                         f"num_training=None to take all that is left ({pool - taken})")
    return train, val, test


def get_CIFAR10_data(num_training=None, num_validation=None, num_test=None,
                     subtract_mean=True, dtype=np.float32, dataset=None, cifar10_dir=None,
                     seed=0):
    """Train / validation / test splits, ready for the classifiers; prints which dataset.

    Inputs:
    - num_training, num_validation, num_test: ints, or None for the dataset's defaults
      (CIFAR-10 49000 / 1000 / 1000, digits 1297 / 250 / 250; see split_sizes).
    - subtract_mean: subtract the mean training image from every split.
    - dtype: float dtype of the images.
    - dataset: "cifar10" or "digits"; None reads $CS231N_DATASET, default "cifar10".
    - cifar10_dir: the cifar-10-batches-py folder (default: datasets/ of this checkout); giving
      it (with dataset None) asks for CIFAR-10 whatever $CS231N_DATASET says.
    - seed: digits only, the shuffle before splitting (CIFAR-10 keeps its official order).
    Returns: dict with X_train, X_val, X_test, dtype arrays (n, 3, 32, 32), and
    y_train, y_val, y_test, int64 arrays (n,) in 0..9.
    """
    name = choose_dataset("cifar10" if dataset is None and cifar10_dir is not None else dataset)
    n_train, n_val, n_test = split_sizes(name, num_training, num_validation, num_test)
    if name == "cifar10":
        X_pool, y_pool, X_test, y_test = load_CIFAR10(cifar10_dir, verbose=False)
        X_test, y_test = X_test[:n_test], y_test[:n_test]
    else:
        X, y = _digits32()
        order = np.random.default_rng(seed).permutation(len(y))
        test, pool = order[:n_test], order[n_test:]
        X_test, y_test, X_pool, y_pool = X[test], y[test], X[pool], y[pool]
    data = {
        "X_train": X_pool[:n_train].astype(dtype),
        "y_train": y_pool[:n_train].copy(),
        "X_val": X_pool[n_train:n_train + n_val].astype(dtype),
        "y_val": y_pool[n_train:n_train + n_val].copy(),
        "X_test": X_test.astype(dtype),
        "y_test": y_test.copy(),
    }
    if subtract_mean:
        mean_image = data["X_train"].mean(axis=0, dtype=np.float64).astype(dtype)
        for key in ("X_train", "X_val", "X_test"):
            data[key] -= mean_image
    where = f", from {Path(cifar10_dir or DEFAULT_CIFAR10_DIR)}" if name == "cifar10" else ""
    print(f"get_CIFAR10_data: dataset = {DESCRIPTIONS[name]}{where}: {n_train} train, "
          f"{n_val} val, {n_test} test, {np.dtype(dtype).name}"
          f"{', mean image subtracted' if subtract_mean else ''}")
    return data


def _centre_crop(image, height, width):
    """The largest centred part of `image` (H, W, C) with aspect ratio height:width."""
    H, W = image.shape[:2]
    if H * width > W * height:  # too tall
        h = round(W * height / width)
        top = (H - h) // 2
        return image[top:top + h]
    w = round(H * width / height)
    left = (W - w) // 2
    return image[:, left:left + w]


def load_demo_images(size=200, dtype=np.float32):
    """Two photos that ship with scikit-image: chelsea (a cat) and coffee (a cup); no network.

    Each is centre-cropped to the requested aspect ratio and resized (anti-aliased).
    Inputs: size, int (square) or (height, width), each >= 1; dtype: float dtype.
    Returns: array (2, 3, height, width) of dtype, RGB values in [0, 255]; [0] chelsea, [1] coffee.
    """
    from skimage import data
    from skimage.transform import resize

    shape = (size, size) if np.ndim(size) == 0 else tuple(size)
    if len(shape) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                  and v >= 1 for v in shape):
        raise ValueError(f"size must be an int >= 1 or a (height, width) pair of them, "
                         f"got {size!r}")
    height, width = (int(v) for v in shape)
    images = [resize(_centre_crop(photo, height, width), (height, width), order=1,
                     anti_aliasing=True, preserve_range=True)
              for photo in (data.chelsea(), data.coffee())]
    return np.stack(images).transpose(0, 3, 1, 2).astype(dtype)
