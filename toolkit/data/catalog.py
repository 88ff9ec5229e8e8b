"""The registry of reference data sets: what each is, which files hold it, how to read them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .. import config
from ..errors import DataError
from ..runtime.spec import InputSpec
from .cache import cached_arrays
from .readers import arrays_to_splits, read_idx_dir, read_image_tree, read_mnist_npz, splits_to_arrays
from .types import Dataset, Split

Reader = Callable[["DatasetInfo", Path, Path], dict[str, Split]]


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    classes: tuple[str, ...]
    input_spec: InputSpec
    candidates: tuple[str, ...]  # paths relative to the data dir, first found wins
    reader: Reader
    keras_loader: Optional[str] = None  # keras.datasets module for the online fallback
    test_split_note: str = "official test split"
    caveat: str = ""


def _npz_or_idx(info: DatasetInfo, path: Path, cache: Path) -> dict[str, Split]:
    return read_idx_dir(path) if path.is_dir() else read_mnist_npz(path)


def _image_tree(info: DatasetInfo, path: Path, cache: Path) -> dict[str, Split]:
    splits = ("train", "val", "test") if info.name == "fer2013" else ("train", "test")

    def build() -> dict[str, np.ndarray]:
        return splits_to_arrays(read_image_tree(path, info.classes, info.input_spec, splits))

    if path.is_dir():
        return arrays_to_splits(build())
    return arrays_to_splits(cached_arrays(path, info.name, cache, build))


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            name="mnist",
            title="MNIST handwritten digits",
            classes=tuple(str(i) for i in range(10)),
            input_spec=InputSpec(28, 28, 1),
            candidates=("mnist.npz",),
            reader=_npz_or_idx,
            keras_loader="mnist",
        ),
        DatasetInfo(
            name="fashion_mnist",
            title="Fashion-MNIST",
            classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
            input_spec=InputSpec(28, 28, 1),
            candidates=("fashion_mnist.npz", "fashion-mnist", "/usr/share/datasets/fashion-mnist"),
            reader=_npz_or_idx,
            keras_loader="fashion_mnist",
        ),
        DatasetInfo(
            name="cifar10",
            title="CIFAR-10",
            classes=("airplane", "automobile", "bird", "cat", "deer",
                     "dog", "frog", "horse", "ship", "truck"),
            input_spec=InputSpec(32, 32, 3),
            candidates=("cifar10.tar.gz", "cifar10"),
            reader=_image_tree,
            keras_loader="cifar10",
            caveat="JPEG re-encoding (q75, 4:2:0) of CIFAR-10: accuracy runs ~1 pt below PNG-exact pixels",
        ),
        DatasetInfo(
            name="fer2013",
            title="FER-2013 facial expressions",
            # Folder (alphabetical) order, stored with every model; NOT the Kaggle label order.
            classes=("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"),
            input_spec=InputSpec(48, 48, 1),
            candidates=("fer2013.tar.gz", "fer2013"),
            reader=_image_tree,
            test_split_note="PrivateTest (val = PublicTest)",
        ),
    )
}


def dataset_info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}") from None


def locate(info: DatasetInfo, data_dir: Path) -> Optional[Path]:
    for candidate in info.candidates:
        path = data_dir / candidate  # an absolute candidate stays absolute
        if path.exists():
            return path
    return None


def load_dataset(name: str, data_dir: Optional[config.PathLike] = None) -> Dataset:
    """Load a reference data set from the data directory, or download it when allowed."""
    info = dataset_info(name)
    root = config.data_dir(data_dir)
    path = locate(info, root)
    if path is not None:
        splits = info.reader(info, path, config.cache_dir())
        source = str(path)
    else:
        splits, source = _download(info, root), f"keras.datasets.{info.keras_loader}"
    return Dataset(
        name=info.name,
        classes=info.classes,
        input_spec=info.input_spec,
        train=splits["train"],
        test=splits["test"],
        val=splits.get("val"),
        source=source,
    )


def _download(info: DatasetInfo, root: Path) -> dict[str, Split]:
    looked = ", ".join(str(root / c) for c in info.candidates)
    hint = f"put the files in the data directory (--data-dir or ${config.DATA_ENV})"
    if info.keras_loader is None:
        raise DataError(f"data set {info.name!r} not found (looked for {looked}); {hint}; it has no online source")
    if config.offline():
        raise DataError(f"data set {info.name!r} not found (looked for {looked}); {hint} (downloads off: ${config.OFFLINE_ENV})")
    try:
        import importlib

        module = importlib.import_module(f"keras.datasets.{info.keras_loader}")
    except ImportError:
        raise DataError(f"data set {info.name!r} not found (looked for {looked}); {hint} (downloading it needs the "
                        "train extra: pip install 'edgecls[train]')") from None
    try:
        (x_train, y_train), (x_test, y_test) = module.load_data()
    except Exception as exc:  # noqa: BLE001 - network and SSL errors all mean "could not fetch"
        raise DataError(f"data set {info.name!r} not found (looked for {looked}) and download failed ({exc}); {hint}") from None

    def nhwc(x: np.ndarray) -> np.ndarray:
        return x[..., None] if x.ndim == 3 else x

    return {
        "train": Split(nhwc(x_train), y_train.reshape(-1).astype(np.int64)),
        "test": Split(nhwc(x_test), y_test.reshape(-1).astype(np.int64)),
    }
