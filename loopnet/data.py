"""Data sets for the lectures' networks. Nothing is downloaded at run time.

    xor, and, or, nand   the four-row truth tables (train = validation = test)
    blobs                two seeded 2-D Gaussian clouds, for logistic regression
    tokens               seeded token sequences (is token 0 in it?), for the attention model
    digits               scikit-learn's bundled 8x8 handwritten digits (1797 images), / 16
    mnist                real MNIST read from IDX files (raw or .gz) in a directory you name, / 255

DATASETS is the registry of these sets by name, which load() and the CLI's --data read.

Every set gives class labels 0..K-1 (ints) and float64 inputs; images keep their (H, W)
shape and each model flattens or not. Splits are seeded: the same seed, the same split.
"""

import gzip
import math
import os
import zlib
from typing import NamedTuple

import numpy as np

from loopnet.errors import LoopnetError, did_you_mean


class DataError(LoopnetError, ValueError):
    """A data set that cannot be found or read."""


class Split(NamedTuple):
    x: np.ndarray
    y: np.ndarray


class Dataset(NamedTuple):
    name: str
    train: Split
    val: Split
    test: Split
    classes: int
    input_shape: tuple  # one example's shape, e.g. (2,) or (8, 8)


TRUTH_TABLES = {
    "xor": [0, 1, 1, 0],
    "and": [0, 0, 0, 1],
    "or": [0, 1, 1, 1],
    "nand": [1, 1, 1, 0],
}


def truth_table(name):
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    y = np.array(TRUTH_TABLES[name], dtype=np.int64)
    whole = Split(x, y)
    return Dataset(name, whole, whole, whole, 2, (2,))


def split(x, y, seed, val_fraction=0.1, test_fraction=0.2):
    """Shuffle with `seed`, then cut into train / validation / test."""
    order = np.random.default_rng(seed).permutation(len(x))
    n_test, n_val = int(round(len(x) * test_fraction)), int(round(len(x) * val_fraction))
    test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    return Split(x[train], y[train]), Split(x[val], y[val]), Split(x[test], y[test])


def blobs(seed=0, n=200, spread=1.0):
    """Two 2-D Gaussian clouds centred at (-1, -1) and (1, 1); labels 0 and 1."""
    rng = np.random.default_rng(seed)
    half = n // 2
    x = np.vstack([rng.normal(-1.0, spread, (half, 2)), rng.normal(1.0, spread, (n - half, 2))])
    y = np.array([0] * half + [1] * (n - half), dtype=np.int64)
    return Dataset("blobs", *split(x, y, seed), 2, (2,))


def tokens(seed=0, n=800, length=6, vocab=8):
    """Token sequences for the attention model: ids in [1, vocab) with token 0 planted in
    half of them at a random position; the label says whether token 0 is there."""
    rng = np.random.default_rng(seed)
    x = rng.integers(1, vocab, (n, length))
    y = rng.integers(0, 2, n)
    x[np.arange(n)[y == 1], rng.integers(0, length, n)[y == 1]] = 0
    return Dataset("tokens", *split(x.astype(np.int64), y.astype(np.int64), seed), 2, (length,))


def digits(seed=0):
    """scikit-learn's 8x8 digits: pixels 0..16 scaled to [0, 1] by / 16 (deck 000's MNIST
    slides divide 0..255 pixels by 255 for the same [0, 1]; mnist() does that)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError("the digits data set comes with scikit-learn: pip install scikit-learn") from None
    bunch = load_digits()
    x = bunch.images.astype(np.float64) / 16.0
    return Dataset("digits", *split(x, bunch.target.astype(np.int64), seed), 10, (8, 8))


# ---------------------------------------------------------------------------------------
# MNIST from IDX files

IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


MAX_IDX_BYTES = 1 << 30  # loopnet reads a whole file into memory: refuse a header asking more


def read_idx(path):
    """An IDX file (raw or gzip) as a NumPy array. Raises DataError naming the file.

    The header is read first and the data streamed after it, so a file is never read past
    the size its header promises (a small gzip that unpacks to gigabytes stops there)."""
    try:
        with open(path, "rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
        with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as handle:
            dtype, shape = _idx_header(handle, path)
            expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
            if expected > MAX_IDX_BYTES:
                raise DataError(f"{path}: its header promises {expected} bytes of data, more than "
                                f"loopnet reads ({MAX_IDX_BYTES} bytes)")
            payload = handle.read(expected + 1)
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or err}") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise DataError(f"{path} is not a valid gzip file: {err}") from None
    if len(payload) != expected:
        got = f"more than {expected}" if len(payload) > expected else str(len(payload))
        raise DataError(f"{path} holds {got} bytes of data, its header says {expected}")
    return np.frombuffer(payload, dtype=dtype).reshape(shape)


def _idx_header(handle, path):
    """(dtype, shape) from an IDX header: magic 0 0, a type code, the number of dimensions,
    then each dimension as a big-endian 32-bit count."""
    magic = handle.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in IDX_TYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    dims = magic[3]
    sizes = handle.read(4 * dims)
    if len(sizes) < 4 * dims:
        raise DataError(f"{path} is truncated: its header promises {dims} dimensions")
    shape = tuple(int.from_bytes(sizes[4 * k:4 * k + 4], "big") for k in range(dims))
    return np.dtype(IDX_TYPES[magic[2]]), shape


MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def find_idx(data_dir, stem):
    for candidate in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        path = os.path.join(data_dir, candidate)
        if os.path.isfile(path):
            return path
    raise DataError(f"no {stem}[.gz] in {data_dir}")


def mnist(data_dir, seed=0, val_fraction=1 / 12):
    """MNIST from the four IDX files in `data_dir`; pixels / 255; a seeded validation
    split from the training set (5000 of 60000 by default). Both splits are checked before
    anything trains: images of one size, integer labels in 0..9, finite pixels, no empty split."""
    if not data_dir or not os.path.isdir(data_dir):
        raise DataError(f"--data-dir {data_dir!r} is not a directory holding the MNIST IDX files")
    arrays = {key: read_idx(find_idx(data_dir, stem)) for key, stem in MNIST_FILES.items()}
    for part in ("train", "test"):
        _check_mnist_split(part, arrays[f"{part}_images"], arrays[f"{part}_labels"])
    train_shape, test_shape = arrays["train_images"].shape[1:], arrays["test_images"].shape[1:]
    if train_shape != test_shape:
        raise DataError(f"MNIST test images are {test_shape[0]}x{test_shape[1]}, the training images "
                        f"{train_shape[0]}x{train_shape[1]}: one model cannot take both")
    x = arrays["train_images"].astype(np.float64) / 255.0
    y = arrays["train_labels"].astype(np.int64)
    train, val, _ = split(x, y, seed, val_fraction=val_fraction, test_fraction=0.0)
    test = Split(arrays["test_images"].astype(np.float64) / 255.0, arrays["test_labels"].astype(np.int64))
    return Dataset("mnist", train, val, test, 10, x.shape[1:])


def _check_mnist_split(part, images, labels):
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"MNIST {part} files disagree: images {images.shape}, labels {labels.shape}")
    if len(labels) == 0:
        raise DataError(f"MNIST {part} files hold no images")
    if labels.dtype.kind not in "iu":
        raise DataError(f"MNIST {part} labels are {labels.dtype.name} numbers; class labels must be integers")
    if labels.min() < 0 or labels.max() > 9:
        bad = int(labels.min()) if labels.min() < 0 else int(labels.max())
        raise DataError(f"MNIST {part} labels include {bad}, expected 0..9")
    if images.dtype.kind == "f" and not np.all(np.isfinite(images)):
        raise DataError(f"MNIST {part} images hold NaN or Inf pixels")


# name -> loader(seed, data_dir) -> Dataset: what load() dispatches through and what the
# CLI offers for --data. Only mnist reads data_dir.
DATASETS = {
    **{name: (lambda seed, data_dir, name=name: truth_table(name)) for name in TRUTH_TABLES},
    "blobs": lambda seed, data_dir: blobs(seed),
    "tokens": lambda seed, data_dir: tokens(seed),
    "digits": lambda seed, data_dir: digits(seed),
    "mnist": lambda seed, data_dir: mnist(data_dir, seed),
}


def load(name, seed=0, data_dir=None):
    """A data set by name (a key of DATASETS): xor, and, or, nand, blobs, tokens, digits,
    mnist (needs data_dir)."""
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}{did_you_mean(name, DATASETS)}; choose one of: {', '.join(DATASETS)}")
    return DATASETS[name](seed, data_dir)


def write_idx(path, array):
    """Write `array` as an IDX file (gzip if the name ends in .gz): for tests and tools.
    Any of IDX's element types: uint8, int8, int16, int32, float32, float64."""
    array = np.asarray(array)
    codes = {np.dtype(t).newbyteorder(">") if np.dtype(t).itemsize > 1 else np.dtype(t): code
             for code, t in IDX_TYPES.items()}
    big_endian = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    if big_endian not in codes:
        raise DataError(f"IDX files cannot hold {array.dtype}")
    header = bytes([0, 0, codes[big_endian], array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    payload = header + array.astype(big_endian).tobytes()
    with open(path, "wb") as handle:
        handle.write(gzip.compress(payload) if path.endswith(".gz") else payload)
