"""Loaders on the real reference data, plus the failure modes users hit."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
from PIL import Image

from edgecls.data import DATASETS, load_dataset, load_image_folder, stratified_holdout
from edgecls.data.readers import read_idx_dir
from edgecls.errors import DataError
from edgecls.runtime import InputSpec


def test_mnist_matches_the_original_order(mnist):
    assert mnist.train.x.shape == (60000, 28, 28, 1) and mnist.test.x.shape == (10000, 28, 28, 1)
    assert mnist.train.x.dtype == np.uint8
    assert mnist.train.y[:5].tolist() == [5, 0, 4, 1, 9]
    assert mnist.test.y[:5].tolist() == [7, 2, 1, 0, 4]
    assert mnist.classes == tuple("0123456789")


def test_fashion(data_dir):
    ds = load_dataset("fashion_mnist", data_dir)
    assert len(ds.train) == 60000 and len(ds.test) == 10000
    assert np.bincount(ds.test.y).tolist() == [1000] * 10
    assert ds.classes[9] == "Ankle boot"


@pytest.mark.slow
def test_cifar10_jpeg_archive(data_dir):
    ds = load_dataset("cifar10", data_dir)
    assert ds.train.x.shape == (50000, 32, 32, 3) and ds.test.x.shape == (10000, 32, 32, 3)
    assert np.bincount(ds.train.y).tolist() == [5000] * 10
    assert np.bincount(ds.test.y).tolist() == [1000] * 10
    assert 90 < ds.train.x.mean() < 160  # real photos, not blank decodes


@pytest.mark.slow
def test_fer2013_splits(data_dir):
    ds = load_dataset("fer2013", data_dir)
    assert ds.classes == ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    assert (len(ds.train), len(ds.val), len(ds.test)) == (28709, 3589, 3589)
    assert ds.train.x.shape[1:] == (48, 48, 1)
    assert np.bincount(ds.train.y)[1] == 436  # disgust is the rare class


def test_idx_reader_matches_npz(tmp_path, mnist):
    """Debian's dataset-fashion-mnist ships gzipped IDX: write MNIST in that format and read it back."""
    def write(name, arr):
        header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
        with gzip.open(tmp_path / f"{name}.gz", "wb") as fh:
            fh.write(header + arr.astype(np.uint8).tobytes())

    write("train-images-idx3-ubyte", mnist.train.x[:100, ..., 0])
    write("train-labels-idx1-ubyte", mnist.train.y[:100])
    write("t10k-images-idx3-ubyte", mnist.test.x[:50, ..., 0])
    write("t10k-labels-idx1-ubyte", mnist.test.y[:50])
    splits = read_idx_dir(tmp_path)
    assert np.array_equal(splits["train"].x, mnist.train.x[:100])
    assert np.array_equal(splits["test"].y, mnist.test.y[:50])


def test_missing_dataset_names_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECLS_OFFLINE", "1")
    with pytest.raises(DataError) as err:
        load_dataset("mnist", tmp_path)
    assert str(tmp_path / "mnist.npz") in str(err.value)
    with pytest.raises(DataError, match="no online source"):
        load_dataset("fer2013", tmp_path)


def test_corrupt_dataset_is_a_clear_error(tmp_path, data_dir):
    (tmp_path / "mnist.npz").write_bytes((data_dir / "mnist.npz").read_bytes()[:5000])
    with pytest.raises(DataError, match="mnist.npz"):
        load_dataset("mnist", tmp_path)


def test_checksum_mismatch_detected(tmp_path, data_dir):
    shutil.copy(data_dir / "mnist.npz", tmp_path / "mnist.npz")
    (tmp_path / "SHA256SUMS").write_text("0" * 64 + "  mnist.npz\n")
    with pytest.raises(DataError, match="checksum mismatch"):
        load_dataset("mnist", tmp_path)


def test_unknown_dataset():
    with pytest.raises(DataError, match="known: mnist"):
        load_dataset("imagenet")


def test_user_folder_with_a_bad_file(tmp_path, mnist):
    for label in (3, 7):
        folder = tmp_path / f"digit{label}"
        folder.mkdir()
        for i in np.flatnonzero(mnist.test.y == label)[:20]:
            Image.fromarray(mnist.test.x[i, ..., 0]).save(folder / f"{i}.png")
    (tmp_path / "digit3" / "broken.png").write_bytes(b"\x89PNG not really")
    ds = load_image_folder(tmp_path, InputSpec(28, 28, 1), test_fraction=0.25)
    assert ds.classes == ("digit3", "digit7")
    assert len(ds.train) == 30 and len(ds.test) == 10
    assert np.bincount(ds.test.y).tolist() == [5, 5]
    assert len(ds.skipped) == 1 and "broken.png" in ds.skipped[0]


def test_user_folder_needs_classes(tmp_path):
    (tmp_path / "only").mkdir()
    with pytest.raises(DataError, match="at least two class sub-folders"):
        load_image_folder(tmp_path, InputSpec(28, 28, 1))
    with pytest.raises(DataError, match="not a directory"):
        load_image_folder(tmp_path / "missing", InputSpec(28, 28, 1))


def test_stratified_holdout_is_reproducible_and_balanced(mnist):
    keep, hold = stratified_holdout(mnist.train.y, 0.1, seed=7)
    again, _ = stratified_holdout(mnist.train.y, 0.1, seed=7)
    assert np.array_equal(keep, again)
    assert len(np.intersect1d(keep, hold)) == 0 and len(keep) + len(hold) == 60000
    frac = np.bincount(mnist.train.y[hold]) / np.bincount(mnist.train.y)
    assert np.allclose(frac, 0.1, atol=0.002)


def test_catalog_lists_four_reference_sets():
    assert set(DATASETS) == {"mnist", "fashion_mnist", "cifar10", "fer2013"}
