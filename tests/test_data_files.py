"""MNIST IDX files that are wrong in every way a file can be: each is one DataError naming
the file or the split, found when the data loads, before any training."""

import gzip

import numpy as np
import pytest

from loopnet import data as datasets
from loopnet.data import DataError


def write_mnist(directory, train_images, train_labels, test_images=None, test_labels=None):
    test_images = train_images[:3] if test_images is None else test_images
    test_labels = train_labels[:3] if test_labels is None else test_labels
    for stem, array in (("train-images-idx3-ubyte", train_images), ("train-labels-idx1-ubyte", train_labels),
                        ("t10k-images-idx3-ubyte", test_images), ("t10k-labels-idx1-ubyte", test_labels)):
        datasets.write_idx(str(directory / stem), array)
    return str(directory)


def images(n, side=4):
    return np.random.default_rng(0).integers(0, 256, (n, side, side)).astype(np.uint8)


def labels(n):
    return (np.arange(n) % 10).astype(np.uint8)


def test_good_files_load(tmp_path):
    mnist = datasets.load("mnist", data_dir=write_mnist(tmp_path, images(24), labels(24)))
    assert mnist.input_shape == (4, 4) and len(mnist.test.y) == 3


@pytest.mark.parametrize("case,fragment", [
    (lambda: (images(24), labels(24), images(3, side=5), labels(3)), "test images are 5x5, the training images 4x4"),
    (lambda: (images(24), (labels(24).astype(np.int8) - 3))[:2], "train labels include -3"),
    (lambda: (images(24), labels(24), images(3), np.array([1, -2, 3], np.int8)), "test labels include -2"),
    (lambda: (images(24), labels(24) + 1), "train labels include 10"),
    (lambda: (images(24), labels(24).astype(np.float32) + 0.7), "train labels are float32 numbers"),
    (lambda: (np.where(images(24) > 250, np.nan, images(24)).astype(np.float32), labels(24)), "train images hold NaN"),
    (lambda: (images(0), labels(0)), "MNIST train files hold no images"),
    (lambda: (images(24), labels(24), images(0), labels(0)), "MNIST test files hold no images"),
])
def test_a_bad_split_is_refused_at_load(tmp_path, case, fragment):
    with pytest.raises(DataError, match=fragment):
        datasets.load("mnist", data_dir=write_mnist(tmp_path, *case()))


def test_dimensions_whose_product_overflows_are_refused(tmp_path):
    path = tmp_path / "huge"
    path.write_bytes(bytes([0, 0, 0x08, 3]) + (2**32 - 1).to_bytes(4, "big") * 3 + b"\x00" * 16)
    with pytest.raises(DataError, match="promises .* bytes of data, more than loopnet reads"):
        datasets.read_idx(str(path))


def test_a_gzip_bomb_is_not_unpacked_past_its_header(tmp_path):
    path = tmp_path / "bomb.gz"
    header = bytes([0, 0, 0x08, 2]) + (2).to_bytes(4, "big") * 2  # promises 4 bytes
    path.write_bytes(gzip.compress(header + bytes(200_000_000), compresslevel=1))  # 200 MB of zeros, ~200 KB packed
    assert path.stat().st_size < 2_000_000
    with pytest.raises(DataError, match="holds more than 4 bytes of data, its header says 4"):
        datasets.read_idx(str(path))


def test_write_idx_round_trips_every_idx_type(tmp_path):
    for dtype in (np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64):
        array = np.arange(-3, 9).reshape(3, 4).astype(dtype) if np.dtype(dtype).kind != "u" else np.arange(12).reshape(3, 4).astype(dtype)
        datasets.write_idx(str(tmp_path / "a.gz"), array)
        back = datasets.read_idx(str(tmp_path / "a.gz"))
        assert back.dtype.kind == np.dtype(dtype).kind and np.array_equal(back, array)
