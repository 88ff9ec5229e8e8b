"""Data set integrity: a SHA256SUMS file beside a data set is honoured, on a tiny npz made in the test."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from edgecls.data.readers import read_mnist_npz, verify_checksum
from edgecls.errors import DataError


@pytest.fixture()
def npz(tmp_path) -> Path:
    path = tmp_path / "mnist.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.integers(0, 256, (6, 4, 4), dtype=np.uint8), y_train=np.arange(6) % 2,
             x_test=rng.integers(0, 256, (2, 4, 4), dtype=np.uint8), y_test=np.array([0, 1]))
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_matching_checksum_loads(npz):
    (npz.parent / "SHA256SUMS").write_text(f"{'0' * 64}  other.npz\n{_sha(npz).upper()} *mnist.npz\n")
    splits = read_mnist_npz(npz)
    assert splits["train"].x.shape == (6, 4, 4, 1) and splits["test"].y.tolist() == [0, 1]


def test_mismatch_names_the_file_and_refuses_to_load(npz):
    (npz.parent / "SHA256SUMS").write_text(f"{_sha(npz)}  mnist.npz\n")
    data = npz.read_bytes()
    npz.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit flipped after the sum was taken
    with pytest.raises(DataError, match=rf"^{npz}: checksum mismatch \(file is corrupt or altered; expected sha256 "
                                        rf"{_sha_prefix(npz)}"):
        read_mnist_npz(npz)


def _sha_prefix(npz: Path) -> str:
    return (npz.parent / "SHA256SUMS").read_text().split()[0][:12] + r"\.\.\.\)$"


def test_the_last_entry_for_a_file_wins(npz):
    sums = npz.parent / "SHA256SUMS"
    sums.write_text(f"{_sha(npz)}  mnist.npz\n{'f' * 64}  mnist.npz\n")
    with pytest.raises(DataError, match="checksum mismatch"):
        verify_checksum(npz)
    sums.write_text(f"{'f' * 64}  mnist.npz\n{_sha(npz)}  mnist.npz\n")
    verify_checksum(npz)


def test_no_sums_file_or_no_entry_means_no_check(npz):
    verify_checksum(npz)  # no SHA256SUMS at all
    (npz.parent / "SHA256SUMS").write_text(f"{'0' * 64}  fashion_mnist.npz\nmalformed line\n")
    verify_checksum(npz)  # not listed: nothing to compare with
