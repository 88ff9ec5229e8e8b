"""Readers for the on-disk formats the reference data sets ship in.

Each reader returns {split name: Split}. A malformed file raises DataError naming the
file and what is wrong with it.
"""

from __future__ import annotations

import gzip
import hashlib
import tarfile
import zipfile
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..errors import DataError
from ..runtime.errors import ImageError
from ..runtime.files import IMAGE_SUFFIXES
from ..runtime.preprocess import load_pixels
from ..runtime.spec import InputSpec
from .types import Split



def verify_checksum(path: Path) -> None:
    """Check `path` against a SHA256SUMS file beside it, when one lists it."""
    sums = path.parent / "SHA256SUMS"
    if not sums.is_file():
        return
    expected = None
    for line in sums.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == path.name:
            expected = parts[0].lower()
    if expected is None:
        return
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        raise DataError(f"{path}: checksum mismatch (file is corrupt or altered; expected sha256 {expected[:12]}...)")


def read_mnist_npz(path: Path) -> dict[str, Split]:
    """Keras-style npz with x_train/y_train/x_test/y_test (MNIST, Fashion-MNIST)."""
    verify_checksum(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = {"x_train", "y_train", "x_test", "y_test"} - set(data.files)
            if missing:
                raise DataError(f"{path}: not an MNIST-style npz (missing keys {sorted(missing)})")
            out = {
                "train": Split(_as_nhwc(data["x_train"], path), data["y_train"].astype(np.int64)),
                "test": Split(_as_nhwc(data["x_test"], path), data["y_test"].astype(np.int64)),
            }
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: cannot read npz ({exc})") from None
    return out


def _as_nhwc(x: np.ndarray, path: Path) -> np.ndarray:
    if x.dtype != np.uint8 or x.ndim not in (3, 4):
        raise DataError(f"{path}: expected uint8 images (N,H,W[,C]), got {x.dtype} {x.shape}")
    return x[..., None] if x.ndim == 3 else x


def read_idx(path: Path) -> np.ndarray:
    """One IDX file (optionally gzipped), as published for MNIST and Fashion-MNIST."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read IDX file ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"{path}: truncated IDX file ({body.size} bytes for shape {dims})")
    return body.reshape(dims)


def read_idx_dir(folder: Path) -> dict[str, Split]:
    """A folder with the four standard IDX files (e.g. Debian's dataset-fashion-mnist)."""
    def find(stem: str) -> Path:
        for name in (f"{stem}.gz", stem):
            if (folder / name).is_file():
                return folder / name
        raise DataError(f"{folder}: missing {stem}.gz")

    return {
        "train": Split(read_idx(find("train-images-idx3-ubyte"))[..., None],
                       read_idx(find("train-labels-idx1-ubyte")).astype(np.int64)),
        "test": Split(read_idx(find("t10k-images-idx3-ubyte"))[..., None],
                      read_idx(find("t10k-labels-idx1-ubyte")).astype(np.int64)),
    }


def _tar_members(path: Path) -> Iterator[tuple[str, bytes]]:
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if member.isfile() and Path(member.name).suffix.lower() in IMAGE_SUFFIXES:
                    fh = tar.extractfile(member)
                    if fh is not None:
                        yield member.name, fh.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{path}: corrupt or unreadable archive ({exc})") from None


def _folder_members(root: Path) -> Iterator[tuple[str, bytes]]:
    for file in sorted(root.rglob("*")):
        if file.is_file() and file.suffix.lower() in IMAGE_SUFFIXES:
            yield file.relative_to(root).as_posix(), file.read_bytes()


def read_image_tree(
    path: Path, classes: Sequence[str], spec: InputSpec, splits: Sequence[str]
) -> dict[str, Split]:
    """`<split>/<class>/<file>` images from a tar archive or a directory.

    Files are ordered by path so the arrays (and thus training) are reproducible.
    """
    if path.suffix in (".gz", ".tar", ".tgz", ".bz2", ".xz"):
        verify_checksum(path)
        members = _tar_members(path)
    else:
        members = _folder_members(path)
    class_index = {name: i for i, name in enumerate(classes)}
    found: dict[str, list[tuple[str, int, np.ndarray]]] = {s: [] for s in splits}
    for name, payload in members:
        parts = name.strip("./").split("/")
        if len(parts) < 3 or parts[0] not in found:
            continue
        if parts[1] not in class_index:
            raise DataError(f"{path}: unexpected class folder {parts[0]}/{parts[1]} (known: {', '.join(classes)})")
        try:
            pixels = load_pixels(payload, spec)
        except ImageError as exc:
            raise DataError(f"{path}: member {name}: {exc.reason}") from None
        found[parts[0]].append((name, class_index[parts[1]], pixels))
    out = {}
    for split, items in found.items():
        if not items:
            raise DataError(f"{path}: no images under {split}/<class>/")
        items.sort(key=lambda item: item[0])
        out[split] = Split(np.stack([p for _, _, p in items]), np.array([c for _, c, _ in items], dtype=np.int64))
    return out


def splits_to_arrays(splits: dict[str, Split]) -> dict[str, np.ndarray]:
    arrays = {}
    for name, split in splits.items():
        arrays[f"x_{name}"], arrays[f"y_{name}"] = split.x, split.y
    return arrays


def arrays_to_splits(arrays: dict[str, np.ndarray]) -> dict[str, Split]:
    names = [k[2:] for k in arrays if k.startswith("x_")]
    return {n: Split(arrays[f"x_{n}"], arrays[f"y_{n}"]) for n in names}

