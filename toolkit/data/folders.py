"""A user's own images: one sub-folder per class, optionally already split into train/ and test/."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import DataError
from ..runtime.errors import ImageError
from ..runtime.preprocess import load_pixels, prepare_with_stats, working_pixels
from ..runtime.spec import InputSpec
from ..runtime.transforms import Pipeline
from ..runtime.files import IMAGE_SUFFIXES
from .types import Dataset, Split, stratified_holdout


def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def class_files(root: Path, classes: list[str]) -> list[tuple[int, Path]]:
    """(label, file) of every image under root/<class>/, in the order training reads them."""
    found = []
    for label, name in enumerate(classes):
        folder = root / name
        if folder.is_dir():
            found += [(label, f) for f in sorted(folder.rglob("*"))
                      if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
    return found


def read_labelled_images(root: Path, classes: list[str], spec: InputSpec, skipped: list[str],
                         pipeline: Optional[Pipeline] = None, files: Optional[list[Path]] = None,
                         listed: Optional[list[tuple[int, Path]]] = None) -> Split:
    """Images under root/<class>/ for the given class order (or the `listed` (label, file) pairs), model-ready
    through `pipeline` when the model declares one; unreadable files go to `skipped`, the files read to `files`."""
    declared = pipeline is not None and pipeline.declared  # then: full-size images first, one batched pass
    xs, ys = [], []
    for label, file in (class_files(root, classes) if listed is None else listed):
        try:
            xs.append(working_pixels(file, spec) if declared else load_pixels(file, spec))
            ys.append(label)
            if files is not None:
                files.append(file)
        except ImageError as exc:
            skipped.append(f"{file}: {exc.reason}")
    if not xs:
        raise DataError(f"{root}: no readable images in class sub-folders ({', '.join(classes)})")
    if declared:
        pixels, stats = prepare_with_stats(xs, spec, pipeline)
        return Split(pixels, np.array(ys, dtype=np.int64), stats)
    return Split(np.stack(xs), np.array(ys, dtype=np.int64))


def read_labelled_folder(folder: Path, spec: InputSpec, classes: Optional[tuple[str, ...]] = None,
                         pipeline: Optional[Pipeline] = None):
    """All images of `folder/<class>/`; raises a clear error for a missing, empty or unlabelled folder."""
    if not folder.is_dir():
        raise DataError(f"{folder}: not a directory")
    found = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")))
    if not found:
        loose = any(p.is_file() for p in folder.iterdir())
        raise DataError(f"{folder}: {'unlabelled images' if loose else 'empty folder'}; "
                        "put images in one sub-folder per class (folder/<class>/*.png)")
    classes = classes or found
    missing = [c for c in found if c not in classes]
    if missing:
        raise DataError(f"{folder}: sub-folders {missing} are not among the model's labels {list(classes)}")
    skipped: list[str] = []
    split = read_labelled_images(folder, list(classes), spec, skipped, pipeline)
    return split, classes, skipped


def load_image_folder(
    root: Path, spec: InputSpec, test_fraction: float = 0.2, seed: int = 1337, pipeline: Optional[Pipeline] = None
) -> Dataset:
    """Read `root/<class>/*` (or `root/{train,test}/<class>/*`); unreadable files are skipped and listed."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a directory (expected one sub-folder per class)")
    skipped: list[str] = []
    test_files: list[Path] = []
    if (root / "train").is_dir() and (root / "test").is_dir():
        classes = [p.name for p in _class_dirs(root / "train")]
        if len(classes) < 2:
            raise DataError(f"{root / 'train'}: need at least two class sub-folders, found {len(classes)}")
        train_files: list[Path] = []
        train = read_labelled_images(root / "train", classes, spec, skipped, pipeline, files=train_files)
        test = read_labelled_images(root / "test", classes, spec, skipped, pipeline, files=test_files)
        train.files = [f.relative_to(root).as_posix() for f in train_files]
    else:
        classes = [p.name for p in _class_dirs(root)]
        if len(classes) < 2:
            raise DataError(f"{root}: need at least two class sub-folders (one per label), found {len(classes)}")
        read: list[Path] = []
        everything = read_labelled_images(root, classes, spec, skipped, pipeline, files=read)
        everything.files = [f.relative_to(root).as_posix() for f in read]
        keep, hold = stratified_holdout(everything.y, test_fraction, seed)
        train, test = everything.take(keep), everything.take(hold)
        test_files = [read[i] for i in hold]
    return Dataset(
        name=root.name,
        classes=tuple(classes),
        input_spec=spec,
        train=train,
        test=test,
        source=str(root.resolve()),
        skipped=skipped,
        test_files=[f.relative_to(root).as_posix() for f in test_files],
    )
