"""In-memory data set: uint8 pixels (N,H,W,C) and integer labels, per split."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..runtime.spec import InputSpec
from ..runtime.transforms import Pipeline


@dataclass
class Split:
    x: np.ndarray  # uint8, (N, H, W, C), raw pixels
    y: np.ndarray  # int64, (N,)
    stats: Optional[dict[str, np.ndarray]] = None  # what declared preprocessing measured per image, if it ran
    files: Optional[list[str]] = None  # a folder's images: each one's path relative to the folder

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"images and labels differ in count: {len(self.x)} vs {len(self.y)}")

    def __len__(self) -> int:
        return len(self.y)

    def take(self, index: np.ndarray) -> "Split":
        stats = None if self.stats is None else {k: v[index] for k, v in self.stats.items()}
        return Split(self.x[index], self.y[index], stats, None if self.files is None else [self.files[i] for i in index])


@dataclass
class Dataset:
    name: str
    classes: tuple[str, ...]
    input_spec: InputSpec
    train: Split
    test: Split
    val: Optional[Split] = None  # an official validation split (FER-2013 PublicTest), if the data set has one
    source: str = ""
    skipped: list[str] = field(default_factory=list)  # "path: reason" for images left out
    test_files: Optional[list[str]] = None  # a folder data set: its test images, relative to `source`

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def limit_split(split: Split, limit: Optional[int], seed: int) -> Split:
    """A stratified sample of `limit` items, or the whole split when no (or no smaller) limit is given."""
    if not limit or limit >= len(split):
        return split
    from ..exporters.quantize import stratified_sample

    return split.take(stratified_sample(split.y, len(split), limit, seed))


def stratified_holdout(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (keep, holdout) with the same class mix in both; reproducible by seed."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"holdout fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    keep, hold = [], []
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        rng.shuffle(idx)
        n_hold = int(round(len(idx) * fraction))
        if len(idx) > 1:
            n_hold = min(max(n_hold, 1), len(idx) - 1)
        else:
            n_hold = 0
        hold.append(idx[:n_hold])
        keep.append(idx[n_hold:])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(hold))


def preprocess_split(split: Split, spec: InputSpec, pipeline: Pipeline) -> Split:
    """Every image through the model's declared preprocessing, as users' images go (unchanged when it
    declares none): what training, evaluation, bench, report and validation score. A split read through
    the pipeline already (data.folders with `pipeline=`: it carries the pipeline's stats) stays as it is."""
    if not pipeline.declared or len(split) == 0 or split.stats is not None:
        return split
    return Split(pipeline(split.x, (spec.height, spec.width)), split.y, files=split.files)
