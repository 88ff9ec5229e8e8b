"""The three samplers that decide which images calibrate, validate and evaluate: `stratified_sample` (int8
calibration, --eval-limit), `limit_split` and `stratified_holdout` (training's validation split, a folder's test
split). Fed class-sorted and imbalanced labels, as real folders and data sets come: a sampler that takes the first
N items, ignores a class or gives one class too much fails here. Milliseconds, no data set, no TensorFlow."""

from __future__ import annotations

import numpy as np
import pytest

from edgecls.data.types import Split, limit_split, stratified_holdout
from edgecls.exporters.quantize import stratified_sample

SORTED = np.repeat(np.arange(5), 200)  # class-sorted, as a folder read class by class
IMBALANCED = np.repeat(np.arange(6), [700, 200, 60, 30, 9, 1])  # class-sorted and skewed, one class of one image
SHUFFLED = np.random.default_rng(0).permutation(IMBALANCED)
LABELS = {"sorted": SORTED, "imbalanced": IMBALANCED, "imbalanced-shuffled": SHUFFLED}


def _expected_share(y: np.ndarray, size: int) -> np.ndarray:
    counts = np.bincount(y)
    return counts / counts.sum() * size


def _tolerance(want: np.ndarray) -> float:
    """Within one image of the exact share, plus the images that classes too small for one image of their own
    take from the others (every class gets at least one)."""
    return 1 + np.ceil(np.clip(1 - want, 0, None).sum())


@pytest.mark.parametrize("name", LABELS)
@pytest.mark.parametrize("size", [10, 100, 512])
def test_stratified_sample_keeps_every_class_in_proportion(name, size):
    y = LABELS[name]
    pick = stratified_sample(y, len(y), size, seed=3)
    assert len(pick) == size
    assert len(np.unique(pick)) == size and pick.min() >= 0 and pick.max() < len(y)
    got = np.bincount(y[pick], minlength=y.max() + 1)
    want = _expected_share(y, size)
    assert (got >= 1).all(), f"a class left out: {got}"
    assert (np.abs(got - want) <= _tolerance(want)).all(), f"{got} vs exact {want.round(2)}"


@pytest.mark.parametrize("name", LABELS)
def test_stratified_sample_draws_at_random_within_each_class(name):
    """Not the first images of each class: in a class-sorted folder those are one session, one camera."""
    y = LABELS[name]
    pick = stratified_sample(y, len(y), 100, seed=3)
    for cls in np.unique(y):
        members = np.flatnonzero(y == cls)
        chosen = np.flatnonzero(np.isin(members, pick))  # positions within the class
        if 1 <= len(chosen) < len(members):
            assert chosen.max() >= len(chosen), f"class {cls}: the first {len(chosen)} of its images"


def test_stratified_sample_is_reproducible_by_seed():
    a = stratified_sample(SORTED, len(SORTED), 100, seed=5)
    assert np.array_equal(a, stratified_sample(SORTED, len(SORTED), 100, seed=5))
    assert not np.array_equal(a, stratified_sample(SORTED, len(SORTED), 100, seed=6))


def test_stratified_sample_without_labels_is_a_random_subset():
    pick = stratified_sample(None, 1000, 100, seed=5)
    assert len(np.unique(pick)) == 100 and pick.max() < 1000
    assert pick.max() > 500  # spread over the items, not the first hundred


def test_stratified_sample_of_everything_is_everything():
    assert np.array_equal(stratified_sample(SORTED, len(SORTED), 5000, seed=1), np.arange(len(SORTED)))


def _indexed_split(y: np.ndarray) -> Split:
    """Images that carry their own index (two pixels, base 256), so a sample shows which items it holds."""
    i = np.arange(len(y))
    x = np.stack([i // 256, i % 256], axis=1).astype(np.uint8).reshape(-1, 1, 2, 1)
    return Split(x, y.astype(np.int64))


def _indices(split: Split) -> np.ndarray:
    return split.x[:, 0, 0, 0].astype(int) * 256 + split.x[:, 0, 1, 0]


@pytest.mark.parametrize("name", LABELS)
def test_limit_split_is_a_stratified_sample_that_keeps_images_with_their_labels(name):
    y = LABELS[name]
    split = _indexed_split(y)
    sample = limit_split(split, 100, seed=2)
    index = _indices(sample)
    assert len(sample) == 100 and len(np.unique(index)) == 100
    assert np.array_equal(sample.y, y[index])  # each image kept its own label
    got = np.bincount(sample.y, minlength=y.max() + 1)
    want = _expected_share(y, 100)
    assert (got >= 1).all() and (np.abs(got - want) <= _tolerance(want)).all(), f"{got} vs {want.round(2)}"


def test_limit_split_without_a_smaller_limit_is_the_whole_split():
    split = _indexed_split(SORTED)
    assert limit_split(split, None, 1) is split and limit_split(split, len(split), 1) is split
    assert limit_split(split, 0, 1) is split


@pytest.mark.parametrize("name", LABELS)
@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.5])
def test_stratified_holdout_splits_every_class(name, fraction):
    y = LABELS[name]
    keep, hold = stratified_holdout(y, fraction, seed=4)
    assert np.intersect1d(keep, hold).size == 0
    assert np.array_equal(np.sort(np.concatenate([keep, hold])), np.arange(len(y)))
    for cls, n in enumerate(np.bincount(y)):
        held = int(np.isin(np.flatnonzero(y == cls), hold).sum())
        if n == 1:
            assert held == 0, "a class's only image must stay in training"
        else:
            assert held == min(max(round(n * fraction), 1), n - 1), f"class {cls}: {held} of {n} held out"
            members = np.flatnonzero(y == cls)
            positions = np.flatnonzero(np.isin(members, hold))
            if held < n - 1:
                assert positions.max() >= held, f"class {cls}: its first {held} images held out"


def test_stratified_holdout_is_reproducible_by_seed():
    keep, hold = stratified_holdout(SORTED, 0.2, seed=9)
    again_keep, again_hold = stratified_holdout(SORTED, 0.2, seed=9)
    assert np.array_equal(keep, again_keep) and np.array_equal(hold, again_hold)
    assert not np.array_equal(hold, stratified_holdout(SORTED, 0.2, seed=10)[1])


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_stratified_holdout_refuses_fractions_outside_0_1(fraction):
    with pytest.raises(ValueError, match="fraction"):
        stratified_holdout(SORTED, fraction, seed=1)
