"""Declared preprocessing: each step on synthetic images with exact expectations (no data sets, no TF)."""

from __future__ import annotations

import numpy as np
import pytest

from edgecls.runtime import EdgeclsError
from edgecls.runtime.transforms import PRESETS, Pipeline, Work, TRANSFORMS, preset_or_steps
from edgecls.runtime.unsure import UnsureRule, calibrate, midtone_fraction

SHAPE = (28, 28)


def _canvas(h: int, w: int, background: float, channels: int = 1) -> np.ndarray:
    return np.full((1, h, w, channels), background, np.float32)


def _com(img: np.ndarray) -> tuple[float, float]:
    """Centre of mass in pixel-centre coordinates (pixel i spans [i, i+1))."""
    v = img[..., 0].astype(np.float64)
    ys, xs = np.arange(v.shape[0]) + 0.5, np.arange(v.shape[1]) + 0.5
    return float(v.sum(1) @ ys / v.sum()), float(v.sum(0) @ xs / v.sum())


def _bbox(img: np.ndarray, level: int = 128) -> tuple[int, int, int, int]:
    mask = img[..., 0] >= level
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return rows[0], cols[0], rows[-1] + 1, cols[-1] + 1


def _run(steps, pixels, shape=SHAPE):
    return Pipeline.parse(steps)(pixels, shape)


# --------------------------------------------------------------------------------------------- polarity


@pytest.mark.parametrize("paper, ink, inverted", [(230, 20, True), (0, 255, False), (150, 40, True), (40, 200, False)])
def test_polarity_decided_by_background_and_ink(paper, ink, inverted):
    img = _canvas(40, 40, paper)
    img[0, 10:30, 18:22] = ink
    work = Work.of(img)
    TRANSFORMS["polarity"].fn(work, SHAPE, background="dark")
    expected = 255 - img if inverted else img
    assert np.array_equal(work.pixels, expected)


def test_polarity_uses_luma_of_rgb_and_light_background_option():
    img = _canvas(32, 32, 0, channels=3)
    img[0, 8:24, 14:18] = (255, 255, 255)  # white stroke on black
    work = Work.of(img.copy())
    TRANSFORMS["polarity"].fn(work, SHAPE, background="light")
    assert work.pixels[0, 0, 0].tolist() == [255, 255, 255] and work.pixels[0, 10, 15].tolist() == [0, 0, 0]


def test_polarity_leaves_a_blank_image_alone():
    img = _canvas(20, 20, 200)
    work = Work.of(img.copy())
    TRANSFORMS["polarity"].fn(work, SHAPE, background="dark")
    assert np.array_equal(work.pixels, img)


# --------------------------------------------------------------------------------------------- levels


def test_levels_maps_background_to_zero_and_ink_to_full():
    img = _canvas(30, 30, 60)
    img[0, 10:20, 10:20] = 180
    work = Work.of(img)
    TRANSFORMS["levels"].fn(work, SHAPE, floor=0.0, noise=0.0)
    assert work.pixels[0, 0, 0, 0] == 0 and work.pixels[0, 15, 15, 0] == 255


def test_levels_floor_drops_faint_grain():
    img = _canvas(30, 30, 0)
    img[0, 5, 5] = 40  # faint speck, 16% of the ink level
    img[0, 10:20, 10:20] = 250
    work = Work.of(img)
    TRANSFORMS["levels"].fn(work, SHAPE, floor=0.2, noise=0.0)
    assert work.pixels[0, 5, 5, 0] == 0 and work.pixels[0, 15, 15, 0] == 255


def test_levels_noise_floor_cleans_grainy_paper_and_leaves_clean_images_exact():
    rng = np.random.default_rng(2)
    clean = _canvas(40, 40, 0)
    clean[0, 10:30, 15:25] = 255
    clean[0, 10:30, 14] = 90  # antialiased edge survives: no grain on a clean border
    work = Work.of(clean.copy())
    TRANSFORMS["levels"].fn(work, SHAPE, floor=0.0, noise=3.0)
    assert np.array_equal(work.pixels, clean)
    grainy = np.clip(rng.normal(60, 12, (1, 40, 40, 1)), 0, 255).astype(np.float32)
    grainy[0, 10:30, 15:25] = 230
    work = Work.of(grainy)
    TRANSFORMS["levels"].fn(work, SHAPE, floor=0.0, noise=3.0)
    assert (work.pixels[0, :8] == 0).mean() > 0.99 and work.pixels[0, 15, 20, 0] == 255


def test_blank_and_one_colour_images_become_black_without_warnings():
    with np.errstate(all="raise"):
        for value in (0, 128, 255):
            out = _run(PRESETS["digits"], _canvas(64, 48, value))
            assert out.shape == (1, 28, 28, 1) and out.max() == 0


# --------------------------------------------------------------------------------------------- crop and fit


def test_crop_to_content_finds_the_ink_box():
    img = _canvas(100, 80, 0)
    img[0, 30:50, 10:70] = 255
    work = Work.of(img)
    TRANSFORMS["crop_to_content"].fn(work, SHAPE, threshold=0.5, margin=0.0)
    assert work.box[0].tolist() == [30, 10, 50, 70]
    TRANSFORMS["crop_to_content"].fn(work, SHAPE, threshold=0.5, margin=0.1)
    assert work.box[0].tolist() == pytest.approx([24, 4, 56, 76])


def test_fit_keeps_aspect_ratio():
    img = _canvas(120, 120, 0)
    img[0, 20:100, 50:70] = 255  # 80 tall, 20 wide: 4:1
    out = _run([{"op": "crop_to_content"}, {"op": "fit", "size": 20, "center": "box"}], img)[0]
    y0, x0, y1, x1 = _bbox(out)
    assert (y1 - y0, x1 - x0) == (20, 5)


def test_fit_centre_of_mass_lands_on_the_centre_pixel():
    img = _canvas(200, 150, 0)
    img[0, 20:60, 100:110] = 255  # an off-centre, lopsided "7": bar and stem
    img[0, 20:26, 80:110] = 255
    out = _run([{"op": "crop_to_content"}, {"op": "fit", "size": 20, "center": "mass"}], img)[0]
    cy, cx = _com(out)
    assert abs(cy - 14.5) <= 0.6 and abs(cx - 14.5) <= 0.6  # MNIST: centre of mass at pixel (14, 14)
    assert max(np.subtract(_bbox(out, 1)[2:], _bbox(out, 1)[:2])) in (20, 21)


def test_fit_is_exact_on_an_already_fitted_digit():
    rng = np.random.default_rng(0)
    digit = np.zeros((1, 28, 28, 1), np.float32)
    digit[0, 4:24, 9:19] = rng.integers(100, 256, (20, 10, 1))
    digit[0, 4, 9:19] = 255
    digit[0, 23, 9:19] = 255  # box spans exactly 20 rows
    cy, cx = _com(digit[0])
    shift = (round(14.5 - cy), round(14.5 - cx))
    out = _run([{"op": "crop_to_content", "threshold": 0.3}, {"op": "fit", "size": 20}], digit)
    assert np.array_equal(out[0], np.roll(digit[0], shift, axis=(0, 1)).astype(np.uint8))


def test_digits_preset_passes_a_ready_digit_through_and_leaves_the_callers_array_alone():
    """The fast path: a digit already in MNIST's form (black paper, full-range ink, fitted, centred) comes out
    exactly as it went in, and uint8 and float inputs give identical pixels and statistics."""
    rng = np.random.default_rng(3)
    ready = np.zeros((1, 28, 28, 1), np.uint8)
    ready[0, 4:24, 9:19] = rng.integers(100, 256, (20, 10, 1))
    ready[0, 4, 9:19] = ready[0, 23, 9:19] = 255
    cy, cx = _com(ready[0])
    ready[0] = np.roll(ready[0], (round(14.5 - cy), round(14.5 - cx)), axis=(0, 1))
    dim = (ready // 2).astype(np.uint8)  # same digit, half the ink: levels must stretch it back
    paper = 255 - ready  # dark ink on white paper: polarity must invert it
    batch = np.concatenate([ready, dim, paper, ready])
    before = batch.copy()
    out, stats = Pipeline.parse(PRESETS["digits"]).apply(batch, SHAPE)
    assert np.array_equal(batch, before)  # never written into
    assert np.array_equal(out[0], ready[0]) and np.array_equal(out[3], ready[0])
    assert np.array_equal(out[2], ready[0])
    assert np.abs(out[1].astype(int) - ready[0]).max() <= 2  # 2x stretch of halved (floored) values
    as_float = batch.astype(np.float32)
    out_f, stats_f = Pipeline.parse(PRESETS["digits"]).apply(as_float, SHAPE)
    assert np.array_equal(out, out_f) and np.array_equal(stats["midtone_fraction"], stats_f["midtone_fraction"])
    assert np.array_equal(as_float, before.astype(np.float32))


# --------------------------------------------------------------------------------------------- resize policies


def test_stretch_on_model_sized_input_is_exact():
    x = np.random.default_rng(1).integers(0, 256, (5, 28, 28, 1)).astype(np.uint8)
    assert np.array_equal(_run(PRESETS["stretch"], x), x)


def test_center_crop_keeps_proportions_and_crops_the_overflow():
    img = np.zeros((1, 40, 80, 3), np.float32)
    img[0, :, :20] = (255, 0, 0)  # red left quarter is cropped away
    img[0, :, 20:60] = (0, 255, 0)
    out = _run([{"op": "resize", "mode": "center_crop"}], img, (32, 32))[0]
    assert out.shape == (32, 32, 3) and (out[:, 1:-1, 1] == 255).all() and (out[:, 1:-1, 0] == 0).all()
    assert out[:, [0, -1], 0].max() <= 32  # the crop's edge is filtered (antialiased), not hard-cut


def test_letterbox_fits_whole_image_with_fill_borders():
    img = np.full((1, 20, 40, 1), 255, np.float32)
    out = _run([{"op": "resize", "mode": "letterbox", "fill": 0}], img, (28, 28))[0, ..., 0]
    rows = np.flatnonzero(out.max(1) > 0)
    assert out[7:21, 0].min() == 255 and (rows[0], rows[-1] + 1) == (7, 21)  # 14 rows of image, 7 of border each side


def test_downscaling_is_antialiased():
    stripes = np.zeros((1, 112, 112, 1), np.float32)
    stripes[0, :, ::2] = 255  # one-pixel stripes: a good resampler averages them to mid-grey
    out = _run(PRESETS["stretch"], stripes)[0]
    assert 100 <= out.min() and out.max() <= 155


# --------------------------------------------------------------------------------------------- declarations


@pytest.mark.parametrize("steps, message", [
    ([{"op": "sharpen"}], "unknown preprocessing step 'sharpen'"),
    ([{"op": "fit", "size": 0}], "size=0 is invalid"),
    ([{"op": "resize", "mode": "squash"}], "mode='squash' is invalid"),
    ([{"op": "levels", "flor": 0.2}], "unknown parameter(s) flor"),
    ([{"op": "fit"}, {"op": "polarity"}], "cannot follow 'fit'"),
    ([{"size": 3}], "must be an object with an \"op\""),
    ({"op": "fit"}, "must be a list"),
    ("[not json", "not valid JSON"),
])
def test_bad_declarations_name_the_source_and_step(steps, message):
    with pytest.raises(EdgeclsError) as err:
        Pipeline.parse(steps, "model.onnx")
    assert "model.onnx" in str(err.value) and message in str(err.value)


def test_declaration_round_trips_with_defaults_filled():
    pipe = Pipeline.parse([{"op": "fit", "size": 18}])
    assert pipe.to_list() == [{"op": "fit", "size": 18, "center": "mass", "fill": 0.0}]
    assert Pipeline.parse(pipe.to_list()) == pipe


def test_presets_and_json_from_the_command_line():
    assert preset_or_steps("digits") == Pipeline.parse(PRESETS["digits"])
    assert preset_or_steps('[{"op": "resize", "mode": "letterbox"}]').to_list()[0]["mode"] == "letterbox"
    with pytest.raises(EdgeclsError, match="unknown preprocessing 'digitz'"):
        preset_or_steps("digitz")


# --------------------------------------------------------------------------------------------- unsure


def test_midtone_fraction_separates_strokes_from_photos():
    strokes = np.zeros((1, 28, 28, 1), np.uint8)
    strokes[0, 5:23, 12:16] = 255
    strokes[0, 5:23, 11] = 128  # antialiased edge
    photo = np.random.default_rng(0).integers(40, 216, (1, 28, 28, 1)).astype(np.uint8)
    blank = np.zeros((1, 28, 28, 1), np.uint8)
    assert midtone_fraction(strokes)[0] == pytest.approx(18 / (18 * 5))
    assert midtone_fraction(photo)[0] == 1.0 and midtone_fraction(blank)[0] == 1.0


def test_unsure_rule_flags_low_confidence_strange_input_and_flat_images():
    rule = UnsureRule(min_confidence=0.6, statistic="midtone_fraction", max_statistic=0.5)
    probs = np.array([[0.9, 0.1], [0.55, 0.45], [0.95, 0.05], [0.95, 0.05]], np.float32)
    pixels = np.zeros((4, 28, 28, 1), np.uint8)
    pixels[:3, 5:23, 12:16] = 255
    pixels[2, 5:23, 5:20] = 100  # mostly mid-tones
    pixels[3] = 7  # flat
    assert rule.flags(probs, pixels).tolist() == [False, True, True, True]
    assert rule.flags(probs).tolist() == [False, True, False, False]  # no pixels: confidence only


def test_flat_check_agrees_with_the_standard_deviation_it_shortcuts():
    from edgecls.runtime.unsure import FLAT_STD, is_flat

    rng = np.random.default_rng(4)
    for spread in (0.0, 1.0, 2.0, 3.0, 5.0, 40.0):
        x = np.clip(rng.normal(120, spread, (200, 28, 28, 1)), 0, 255).astype(np.uint8)
        x[:20, 0, 0] = 255  # one bright pixel: a wide range, yet nearly flat
        expected = x.reshape(len(x), -1).std(axis=1) < FLAT_STD
        assert np.array_equal(is_flat(x), expected)
    assert is_flat(np.zeros((1, 32, 32, 3), np.uint8)).tolist() == [True]


def test_calibration_hits_its_target_rate():
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 3, (2000, 10))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    pixels = rng.integers(0, 2, (2000, 28, 28, 1)).astype(np.uint8) * 255
    pixels[:, :3, :3] = rng.integers(40, 200, (2000, 3, 3, 1))
    rule = calibrate(probs, pixels, "midtone_fraction", 0.02, "synthetic")
    assert 0.01 <= rule.flags(probs, pixels).mean() <= 0.03
    assert rule.calibration["flagged_rate"] == pytest.approx(rule.flags(probs, pixels).mean())
    assert UnsureRule.parse(rule.to_dict()) == rule and UnsureRule.parse({}) is None


def test_measure_records_the_statistic_inside_the_region_at_full_resolution():
    img = np.zeros((2, 140, 140, 1), np.float32)
    img[:, 40:100, 60:72] = 255  # a solid stroke
    img[1, 40:100, 72:74] = 128  # ...with a grey edge on the second image
    img[:, 0:10, 0:10] = 128  # mid-grey outside the ink box: must not count
    work = Work.of(img)
    work.box[:] = [40, 60, 100, 74]
    TRANSFORMS["measure"].fn(work, SHAPE, statistic="midtone_fraction")
    assert work.stats["midtone_fraction"] == pytest.approx([0.0, 2 / 14], abs=0.005)  # median rounds stroke ends
    pixels, stats = Pipeline.parse([{"op": "crop_to_content", "threshold": 0.9}, {"op": "measure"},
                                    {"op": "fit"}]).apply(img, SHAPE)
    assert pixels.shape == (2, 28, 28, 1) and stats["midtone_fraction"].shape == (2,)


def test_measure_ignores_paper_grain_on_large_images():
    rng = np.random.default_rng(5)
    img = np.clip(rng.normal(0, 30, (1, 150, 150, 1)), 0, 255).astype(np.float32)
    img[:, 30:120, 70:80] = 255
    work = Work.of(img)
    work.box[:] = [30, 70, 120, 80]
    TRANSFORMS["measure"].fn(work, SHAPE, statistic="midtone_fraction")
    assert work.stats["midtone_fraction"][0] < 0.05  # 3x3 median: speckle inside the box is not ink
