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


def _canvases(rng: np.random.Generator, n: int, shape: tuple[int, int]) -> np.ndarray:
    """Digit-like strokes on user-sized canvases: dark ink on grainy paper or light ink on black."""
    h, w = shape
    out = np.empty((n, h, w, 1), np.uint8)
    for i in range(n):
        paper = rng.normal(200 if i % 2 else 15, 12, (h, w))
        y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
        paper[y : y + h // 3, x : x + 4] = 30 if i % 2 else 240
        paper[y : y + 4, x : x + w // 3] = 30 if i % 2 else 240
        out[i, ..., 0] = np.clip(paper, 0, 255)
    return out


@pytest.mark.parametrize("shape", [(112, 112), (112, 90), (70, 112), (64, 40)])
@pytest.mark.parametrize("steps", [PRESETS["digits"], PRESETS["silhouette"], PRESETS["photo"],
                                   ({"op": "crop_to_content", "margin": 0.1}, {"op": "resize", "mode": "letterbox"})])
def test_large_and_non_square_canvases_give_one_image_its_batch_answer(shape, steps):
    """Square images take both axes in one pass, others one axis at a time; large ones are blurred and median
    filtered before they are measured: one image alone gets exactly what it gets in a batch."""
    batch = _canvases(np.random.default_rng(11), 6, shape)
    pipeline = Pipeline.parse(steps)
    pixels, stats = pipeline.apply(batch, (28, 28))
    for i in range(len(batch)):
        one, one_stats = pipeline.apply(batch[i : i + 1], (28, 28))
        assert np.array_equal(one, pixels[i : i + 1]), i
        assert all(np.array_equal(one_stats[k], stats[k][i : i + 1]) for k in stats)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 5, 7), (1, 40, 33), (3, 2, 9)])
def test_the_median_filter_and_edge_padding_equal_numpys(dtype, shape):
    from edgecls.runtime.transforms import _edge_padded, _median3x3

    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, shape).astype(dtype) if dtype == np.uint8 else rng.normal(100, 60, shape).astype(dtype)
    for before, after in [(0, 1), (1, 0), (1, 1), (2, 1), (3, 3)]:
        padded = np.pad(image, ((0, 0), (before, after), (before, after)), mode="edge")
        assert np.array_equal(_edge_padded(image, before, after), padded)
    padded = np.pad(image, ((0, 0), (1, 1), (1, 1)), mode="edge")
    h, w = shape[1:]
    windows = np.stack([padded[:, dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)])
    assert np.array_equal(_median3x3(image), np.median(windows, axis=0))


def test_one_image_prepared_alone_leaves_the_callers_array_alone():
    from edgecls.runtime.preprocess import prepare_with_stats
    from edgecls.runtime.spec import InputSpec

    for steps in (PRESETS["digits"], PRESETS["photo"]):
        image = _canvases(np.random.default_rng(2), 1, (64, 64))[0]
        before = image.copy()
        pixels, _ = prepare_with_stats([image], InputSpec(28, 28, 1), Pipeline.parse(steps))
        assert np.array_equal(image, before) and not np.shares_memory(pixels, image)
