"""Declared preprocessing gives one image the same pixels and statistics whether it runs alone or in a batch:
small batches take shortcuts (whole-pixel shifts as slices, measurements shared between steps, early exits for
images already in range) that must not change a single value."""

from __future__ import annotations

import numpy as np
import pytest

from edgecls.runtime.transforms import PRESETS, Pipeline


def _digits(rng: np.random.Generator, n: int) -> np.ndarray:
    """Digit-like images: strokes on black, some shifted, inverted, faint, noisy or blank."""
    out = np.zeros((n, 28, 28, 1), np.uint8)
    for i in range(n):
        y, x = rng.integers(2, 7, 2)
        h, w = rng.integers(8, 18, 2)
        h = 20 if i % 3 == 0 else h  # 20 px tall: fitted without scaling, placed by a whole-pixel shift
        out[i, y : y + h, x : x + 3] = 255
        out[i, y : y + 3, x : x + w] = rng.integers(120, 256)
        kind = i % 5
        if kind == 1:
            out[i] = 255 - out[i]  # ink on paper
        elif kind == 2:
            out[i] = (out[i] * 0.4).astype(np.uint8)  # faint
        elif kind == 3:
            out[i] = np.clip(out[i] + rng.integers(0, 30, out[i].shape), 0, 255).astype(np.uint8)  # grain
        elif kind == 4 and i % 10 == 4:
            out[i] = 0  # blank
    return out


@pytest.mark.parametrize("preset", ["digits", "silhouette"])
def test_single_images_equal_their_batch(preset):
    rng = np.random.default_rng(7)
    batch = _digits(rng, 60)
    pipeline = Pipeline.parse(PRESETS[preset])
    pixels, stats = pipeline.apply(batch, (28, 28))
    for i in range(len(batch)):
        one, one_stats = pipeline.apply(batch[i : i + 1], (28, 28))
        assert np.array_equal(one, pixels[i : i + 1]), i
        assert one_stats.keys() == stats.keys() and all(np.array_equal(one_stats[k], stats[k][i : i + 1]) for k in stats)
    for size in (2, 3, 4, 5, 9):  # around the size where whole-pixel shifts stop being sliced one by one
        part, part_stats = pipeline.apply(batch[:size], (28, 28))
        assert np.array_equal(part, pixels[:size]) and all(np.array_equal(part_stats[k], stats[k][:size]) for k in stats)


def test_caller_arrays_are_never_written():
    rng = np.random.default_rng(3)
    batch = _digits(rng, 10)
    before = batch.copy()
    for preset in ("digits", "silhouette", "photo"):
        Pipeline.parse(PRESETS[preset]).apply(batch, (28, 28))
        Pipeline.parse(PRESETS[preset]).apply(batch[:1], (28, 28))
    assert np.array_equal(batch, before)


def test_whole_pixel_shifts_are_exercised():
    """The images above include regions that need no scaling (the slice/gather copy paths), not only resampling."""
    from edgecls.runtime import transforms

    seen = []
    real = transforms._shifted
    transforms._shifted = lambda *a: seen.append(a[1:3]) or real(*a)
    try:
        Pipeline.parse(PRESETS["digits"]).apply(_digits(np.random.default_rng(7), 60)[:3], (28, 28))
    finally:
        transforms._shifted = real
    assert seen
