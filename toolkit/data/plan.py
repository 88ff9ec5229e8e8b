"""Which labelled images each job on a model uses, decided in one place from its card (or a folder the user gave).

- **test** (evaluate, bench, report, export's validation): the model's held-out test split, the data set's
  official test split or the exact files training held out of the user's folder; `--data folder/` instead.
- **calibration** (static int8, TFLite int8 in bench): a stratified sample of the training images, the ones
  training fitted on; never a test or held-out image.
- **held-out** (the unsure flag's calibration): the validation images training kept apart for model selection.

Every split comes back model-ready: through the model's declared preprocessing, as users' images go. The card
records where its data came from (`DataRecord`): a reference data set by name, or a user's folder with its test
file list per class, so adding images to the folder later never moves the split.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np

from .. import config
from ..card import DataRecord, ModelCard
from ..errors import DataError
from ..runtime.spec import InputSpec
from ..runtime.transforms import Pipeline, preset_or_steps
from .types import Dataset, Split, limit_split, stratified_holdout

if TYPE_CHECKING:
    from ..runtime.metadata import ModelInfo


@dataclass(frozen=True)
class Images:
    """Model-ready labelled images (labels None when unknown) and a description of where they came from."""

    x: np.ndarray  # uint8 (N, H, W, C) through the model's declared preprocessing
    y: Optional[np.ndarray]
    description: str
    stats: Optional[dict[str, np.ndarray]] = None  # what the preprocessing measured (the unsure flag's input)

    def __len__(self) -> int:
        return len(self.x)


def declared_pipeline(name: str, card: Optional[ModelCard], override: Optional[str] = None) -> Pipeline:
    """The preprocessing a model's images go through: `--preprocess` when given, else what it was trained with
    (its card), else the zoo's declaration for its name, else none (stretch)."""
    if override:
        return preset_or_steps(override)
    if card is not None and card.preprocess is not None:
        return Pipeline.parse(list(card.preprocess) or None, f"{name} model card")
    from ..zoo import registry

    spec = registry.MODELS.get(name) if registry.MODELS else None
    return Pipeline.parse(list(spec.preprocess) if spec is not None and spec.preprocess else None, name)


class DataPlan:
    """The labelled images of one model. Reads lazily and once: a plan that only tests never decodes the
    training images."""

    def __init__(self, card: Optional[ModelCard], spec: InputSpec, pipeline: Pipeline, *,
                 folder: Optional[Path] = None, data_dir: Optional[config.PathLike] = None,
                 labels: Optional[tuple[str, ...]] = None, reference: Optional[str] = None) -> None:
        """card: the model's card (None: no card known); folder: the user's --data override; labels: class
        order for folder data (default: the card's); reference: a reference data set to use without a card."""
        self.card, self.spec, self.pipeline = card, spec, pipeline
        self.folder, self.data_dir, self.reference = (Path(folder) if folder else None), data_dir, reference
        self.labels = tuple(labels or (card.classes if card is not None else ()))

    @classmethod
    def for_card(cls, card: ModelCard, *, folder: Optional[Path] = None, data_dir: Optional[config.PathLike] = None,
                 preprocess: Optional[str] = None) -> "DataPlan":
        return cls(card, card.input_spec, declared_pipeline(card.name, card, preprocess), folder=folder,
                   data_dir=data_dir)

    @property
    def source(self) -> str:
        """Where the images come from, as people name it."""
        if self.folder is not None:
            return str(self.folder)
        if self.card is not None:
            return self.card.described_source
        return self.reference or "no labelled data"

    def test(self, limit: Optional[int] = None, seed: int = config.DEFAULT_SEED) -> Images:
        """The images a model is scored on (a stratified sample of `limit` when given)."""
        if self.folder is not None:
            split, what = self._folder_test(), str(self.folder)
        else:
            split, what = self._recorded.test, f"{self._described} {self._split_note}"
        if limit and limit < len(split):
            split, what = limit_split(split, limit, seed), f"{what}, stratified sample"
        return self._ready(split, f"{what} ({len(split)} images)")

    def calibration(self, size: int, seed: int = config.DEFAULT_SEED) -> Images:
        """A stratified sample of `size` of the images training fitted on, never one it held out (DataError when
        the training data is not there)."""
        from ..exporters.quantize import stratified_sample

        train = self._training_parts[0]
        sample = train.take(stratified_sample(train.y, len(train), size, seed))
        return self._ready(sample, f"{self._described} training images ({len(sample)}, stratified)")

    def heldout(self) -> Images:
        """The images training held out for model selection: never trained on, never scored."""
        split = self._training_parts[1]
        if split is None:
            raise self._no_card()
        return self._ready(split, f"{self._described} held-out validation images ({len(split)})")

    @cached_property
    def _training_parts(self) -> tuple[Split, Optional[Split]]:
        """(the images training fitted on, the ones it held out for model selection), as the card says training
        split them; without a card, the whole training split and None."""
        dataset = self._recorded
        if dataset.val is not None:
            return dataset.train, dataset.val
        if self.card is None:
            return dataset.train, None
        keep, hold = stratified_holdout(dataset.train.y, self.card.val_fraction or 0.1, self.card.seed)
        return dataset.train.take(keep), dataset.train.take(hold)

    def _ready(self, split: Split, description: str) -> Images:
        """Raw pixels through the declared pipeline (a split read through it already keeps its own stats)."""
        if split.stats is None and self.pipeline.declared and len(split):
            x, stats = self.pipeline.apply(split.x, (self.spec.height, self.spec.width))
            return Images(x, split.y, description, stats)
        return Images(split.x, split.y, description, split.stats)

    def _card(self) -> ModelCard:
        if self.card is None:
            raise self._no_card()
        return self.card

    @staticmethod
    def _no_card() -> DataError:
        return DataError("no model card says which data this model was trained on; give --data folder/ "
                         "(one sub-folder per class)")

    @property
    def _described(self) -> str:
        return self.card.described_source if self.card is not None else self.reference or ""

    @property
    def _split_note(self) -> str:
        return self.card.test.split if self.card is not None else "test"

    @cached_property
    def _recorded(self) -> Dataset:
        """The model's training data as its card records it, in raw pixels (a folder's images read through the
        pipeline at full size, as training read them)."""
        if self.card is None and self.reference:
            from .catalog import load_dataset

            return load_dataset(self.reference, self.data_dir)
        card = self._card()
        record = card.data
        if record is None or record.kind == "dataset":
            return _reference(card, self.data_dir)
        return _recorded_folder(card, record, self.pipeline)

    def _folder_test(self) -> Split:
        """A labelled folder given with --data: its test/ part when it has train/ and test/, else every image."""
        from .folders import read_labelled_folder

        folder = self.folder
        root = folder / "test" if (folder / "train").is_dir() and (folder / "test").is_dir() else folder
        split, _, _ = read_labelled_folder(root, self.spec, self.labels or None, self.pipeline)
        return split


def plan_for_onnx(path: Path, info: "ModelInfo", *, folder: Optional[Path] = None,
                  data_dir: Optional[config.PathLike] = None, workspace: Optional[config.PathLike] = None) -> DataPlan:
    """The data plan of an exported .onnx file: its metadata says its labels, input and preprocessing; its card
    (beside it, else its model name's) says its data, when the card is this file's (the .keras checksums match)."""
    from .catalog import DATASETS

    spec = InputSpec(info.input_spec.height, info.input_spec.width, info.input_spec.channels)
    pipeline = Pipeline.parse(info.preprocess or None, str(path))
    card = card_of_onnx(Path(path), info, workspace)
    if folder is None and card is None and info.dataset not in DATASETS:
        raise DataError(f"{path}: no labelled data known for it (trained on {info.dataset or 'unknown data'!r}, and no "
                        "model card beside it or in the workspace says where that data is); give --data folder/ "
                        "with one sub-folder per class")
    return DataPlan(card, spec, pipeline, folder=folder, data_dir=data_dir, labels=info.labels,
                    reference=info.dataset if card is None else None)


def card_of_onnx(path: Path, info: "ModelInfo", workspace: Optional[config.PathLike] = None) -> Optional[ModelCard]:
    """The model card an exported file came from: the one beside it, else the one of its model name; None when
    that card belongs to another model (its .keras checksum differs from the one the file records)."""
    from ..card import read_card
    from ..runtime.store import CARD_FILE, model_folder

    beside = path.parent / CARD_FILE
    where = beside if beside.is_file() else model_folder(info.name, workspace).card_path if info.name else None
    if where is None or not where.is_file():
        return None
    card = read_card(where)
    if card.dataset != info.dataset:
        return None
    return card if not (info.source_sha256 and card.sha256) or info.source_sha256 == card.sha256 else None


def _reference(card: ModelCard, data_dir: Optional[config.PathLike]) -> Dataset:
    from .catalog import DATASETS, load_dataset

    if card.dataset not in DATASETS:  # a folder model whose card predates the `data` record
        raise DataError(f"model {card.name!r} was trained on a folder ({card.dataset_source or card.dataset}) its card "
                        "does not record the split of; give --data folder/ to evaluate on a labelled folder")
    return load_dataset(card.dataset, data_dir)


def _recorded_folder(card: ModelCard, record: DataRecord, pipeline: Pipeline) -> Dataset:
    """The user's folder split as training split it: test and validation = the recorded files, train = every
    other image (a card without validation files: training's seed picks them from train)."""
    from .folders import class_files, read_labelled_images

    root = Path(record.path)
    if not root.is_dir():
        raise DataError(f"model {card.name!r} was trained on {root}, which is gone; give --data folder/ "
                        "(one sub-folder per class) to use another labelled folder")
    classes = list(card.classes)
    listed, val_listed = ([(classes.index(c), root / rel) for c, files in recorded.items() for rel in files]
                          for recorded in (record.test_files, record.val_files))
    missing = [p for _, p in listed + val_listed if not p.is_file()]
    if missing:
        what = "held-out test and validation images" if val_listed else "held-out test images"
        raise DataError(f"{root}: {len(missing)} of the {len(listed) + len(val_listed)} {what} recorded in model "
                        f"{card.name!r}'s card are gone (first: {missing[0]}); give --data folder/ to evaluate on "
                        "another labelled folder")
    held_out = {p for _, p in listed + val_listed}
    train_root = root / "train" if (root / "train").is_dir() and (root / "test").is_dir() else root
    train_listed = [(label, f) for label, f in class_files(train_root, classes) if f not in held_out]

    def read(where: Path, files: list[tuple[int, Path]]) -> Split:
        skipped: list[str] = []
        split = read_labelled_images(where, classes, card.input_spec, skipped, pipeline=pipeline, listed=files)
        if skipped:
            raise DataError(f"{where}: recorded images no longer readable: {skipped[0]}"
                            + (f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""))
        return split

    return Dataset(name=card.dataset, classes=tuple(classes), input_spec=card.input_spec,
                   train=read(train_root, train_listed), test=read(root, listed),
                   val=read(root, val_listed) if val_listed else None, source=str(root))


def data_record(dataset: Dataset, val_fraction: float, val: Optional[Split] = None) -> DataRecord:
    """What a model card stores about its training data (see the module docstring); `val`: the images training
    held out for model selection (a folder's carry their file names)."""
    from .catalog import DATASETS

    if dataset.test_files is None and dataset.name in DATASETS:
        return DataRecord("dataset", name=dataset.name)

    def by_class(labels: np.ndarray, files: list[str]) -> dict[str, tuple[str, ...]]:
        grouped: dict[str, list[str]] = {c: [] for c in dataset.classes}
        for label, rel in zip(labels.tolist(), files):
            grouped[dataset.classes[label]].append(rel)
        return {c: tuple(f) for c, f in grouped.items()}

    held = by_class(val.y, val.files) if val is not None and val.files is not None else {}
    return DataRecord("folder", path=str(Path(dataset.source).resolve()), classes=tuple(dataset.classes),
                      val_fraction=val_fraction, test_files=by_class(dataset.test.y, dataset.test_files or []),
                      val_files=held)


def portable_source(dataset: Dataset) -> str:
    """The card's `dataset_source`: a reference data set's file name inside the data directory (shipped cards
    carry no machine's paths), a user's folder as its absolute path (where the card finds it again)."""
    from .catalog import DATASETS

    if dataset.test_files is None and dataset.name in DATASETS:
        return Path(dataset.source).name if "/" in dataset.source else dataset.source
    return str(Path(dataset.source).resolve())
