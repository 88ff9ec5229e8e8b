"""The data a model was trained on, as its card records it, so `export`, `eval`, `bench`, `report` and
`validate` find it with no flags and score only images training never saw.

The card's `data` entry holds either a reference data set's name, or a folder's absolute path with its
held-out test split as a file list per class (a file list survives new images being added to the folder,
which a seed would not).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from .. import config
from ..errors import DataError
from ..runtime.spec import InputSpec
from .types import Dataset, Split


def data_record(dataset: Dataset, val_fraction: float) -> dict[str, Any]:
    """What a model card stores about its training data."""
    from .catalog import DATASETS

    if dataset.test_files is None and dataset.name in DATASETS:
        return {"kind": "dataset", "name": dataset.name}
    test: dict[str, list[str]] = {c: [] for c in dataset.classes}
    for label, rel in zip(dataset.test.y.tolist(), dataset.test_files or []):
        test[dataset.classes[label]].append(rel)
    return {"kind": "folder", "path": str(Path(dataset.source).resolve()), "classes": list(dataset.classes),
            "val_fraction": val_fraction, "test_files": test}


def portable_source(dataset: Dataset) -> str:
    """The card's `dataset_source`: a reference data set's file name inside the data directory (shipped cards
    carry no machine's paths), a user's folder as its absolute path (where the card finds it again)."""
    from .catalog import DATASETS

    if dataset.test_files is None and dataset.name in DATASETS:
        return Path(dataset.source).name if "/" in dataset.source else dataset.source
    return str(Path(dataset.source).resolve())


def _folder_record(card: dict[str, Any]) -> Optional[dict[str, Any]]:
    record = card.get("data")
    return record if isinstance(record, dict) and record.get("kind") == "folder" else None


def _reference(card: dict[str, Any], data_dir: Optional[config.PathLike]) -> Dataset:
    from .catalog import DATASETS, load_dataset

    if card["dataset"] not in DATASETS:  # a folder model whose card predates the `data` record
        raise DataError(f"model {card['name']!r} was trained on a folder ({card.get('dataset_source') or card['dataset']}) "
                        "its card does not record the split of; give --data folder/ to evaluate on a labelled folder")
    return load_dataset(card["dataset"], data_dir)


def describe_source(card: dict[str, Any]) -> str:
    record = _folder_record(card)
    return record["path"] if record else card["dataset"]


def _check_folder(card: dict[str, Any], record: dict[str, Any]) -> Path:
    root = Path(record["path"])
    if not root.is_dir():
        raise DataError(f"model {card['name']!r} was trained on {root}, which is gone; give --data folder/ "
                        "(one sub-folder per class) to use another labelled folder")
    return root


def _listed_test(card: dict[str, Any], record: dict[str, Any]) -> tuple[Path, list[tuple[int, Path]]]:
    root = _check_folder(card, record)
    classes = list(card["classes"])
    listed = [(classes.index(c), root / rel) for c, files in record["test_files"].items() for rel in files]
    missing = [p for _, p in listed if not p.is_file()]
    if missing:
        raise DataError(f"{root}: {len(missing)} of the {len(listed)} held-out test images recorded in model "
                        f"{card['name']!r}'s card are gone (first: {missing[0]}); give --data folder/ to evaluate "
                        "on another labelled folder")
    return root, listed


def _read(root: Path, classes: list[str], spec: InputSpec, listed: list[tuple[int, Path]], pipeline=None) -> Split:
    from .folders import read_labelled_images

    skipped: list[str] = []
    split = read_labelled_images(root, classes, spec, skipped, pipeline=pipeline, listed=listed)
    if skipped:
        raise DataError(f"{root}: recorded images no longer readable: {skipped[0]}"
                        + (f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""))
    return split


def card_test_split(card: dict[str, Any], data_dir: Optional[config.PathLike] = None,
                    pipeline=None) -> tuple[Split, str]:
    """The model's own held-out test split (the data set's official test split in raw pixels, or the files
    training held out of the user's folder, read through `pipeline` at full size as training read them: then
    the split carries the pipeline's stats and `preprocess_split` leaves it alone), and a description."""
    record = _folder_record(card)
    if record is None:
        dataset = _reference(card, data_dir)
        return dataset.test, f"{dataset.name} {card['test']['split']}"
    root, listed = _listed_test(card, record)
    spec = InputSpec.from_dict(card["input_spec"])
    return _read(root, list(card["classes"]), spec, listed, pipeline), f"{root} held-out test split"


def card_dataset(card: dict[str, Any], data_dir: Optional[config.PathLike] = None, pipeline=None) -> Dataset:
    """The model's training data as a Dataset in raw pixels: a reference data set, or the recorded folder split
    as training split it (train = every image not in the recorded test list)."""
    record = _folder_record(card)
    if record is None:
        return _reference(card, data_dir)
    from .folders import class_files

    root, listed = _listed_test(card, record)
    classes = list(card["classes"])
    spec = InputSpec.from_dict(card["input_spec"])
    test_set = {p for _, p in listed}
    train_root = root / "train" if (root / "train").is_dir() and (root / "test").is_dir() else root
    train_listed = [(label, f) for label, f in class_files(train_root, classes) if f not in test_set]
    return Dataset(name=card["dataset"], classes=tuple(classes), input_spec=spec,
                   train=_read(train_root, classes, spec, train_listed, pipeline),
                   test=_read(root, classes, spec, listed, pipeline),
                   source=str(root))


def folder_test_split(folder: Path, classes: list[str], spec: InputSpec, pipeline=None) -> Split:
    """A labelled folder given with --data: its test/ part when it has train/ and test/, else every image;
    classes matched by name. Model-ready when a declared pipeline is given."""
    from ..exporting import read_labelled_folder

    root = folder / "test" if (folder / "train").is_dir() and (folder / "test").is_dir() else folder
    split, _, _ = read_labelled_folder(root, spec, tuple(classes), pipeline)
    return split
