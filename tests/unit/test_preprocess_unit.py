"""Preprocessing on synthetic images (no data set): exact pixels for every input form, mode and failure.

Targets runtime/preprocess.py after issue 12 (hardening): 16-bit data is scaled by its bit depth (never by its
content), integer arrays outside 0-255 are refused with a clear error, files are opened with os.open."""

from __future__ import annotations

import io
import os
import re

import numpy as np
import pytest
from PIL import Image

from edgecls.runtime import preprocess
from edgecls.runtime.errors import ImageError
from edgecls.runtime.preprocess import (array_to_image, convert_mode, describe, load_pixels, open_image, to_batch,
                                        to_pixels)
from edgecls.runtime.spec import InputSpec

GREY = InputSpec(4, 6, 1)  # 4 rows, 6 columns: height and width must never be swapped
RGB = InputSpec(4, 6, 3)
RAMP = (np.arange(24, dtype=np.uint8).reshape(4, 6) * 10)  # a grey 4x6 image, all values distinct


def _png(image: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=kw.pop("format", "PNG"), **kw)
    return buf.getvalue()


# --- describe ----------------------------------------------------------------------------------------

def test_describe_names_every_source_kind(tmp_path):
    assert describe(tmp_path / "a.png") == str(tmp_path / "a.png")
    assert describe("b.jpg") == "b.jpg"
    assert describe(b"12345") == "<5 bytes>" and describe(bytearray(3)) == "<3 bytes>"
    assert describe(Image.new("RGB", (7, 5))) == "<PIL image RGB 7x5>"
    assert describe(np.zeros((2, 3), np.uint16)) == "<array uint16 (2, 3)>"
    assert describe(3.5) == "<float>"


# --- every input form gives the same pixels -----------------------------------------------------------

def test_every_source_form_gives_identical_pixels(tmp_path):
    path = tmp_path / "ramp.png"
    path.write_bytes(_png(Image.fromarray(RAMP)))
    expected = RAMP[..., None]
    for source in (path, str(path), path.read_bytes(), bytearray(path.read_bytes()), Image.fromarray(RAMP),
                   RAMP, RAMP[..., None], RAMP.astype(np.float32) / 255.0, RAMP.astype(np.float64),
                   RAMP.astype(np.uint16) * 257, np.stack([RAMP] * 3, -1), np.stack([RAMP] * 3, 0)):
        out = load_pixels(source, GREY)
        assert out.dtype == np.uint8 and out.shape == (4, 6, 1), describe(source)
        np.testing.assert_array_equal(out, expected, err_msg=describe(source))
    # Issue 12: uint16 is 16-bit data whatever its content (was: 0-255 when no value exceeded 255), so the
    # same ramp held in the low byte of 16 bits is a near-black image and must stay one.
    np.testing.assert_array_equal(load_pixels(RAMP.astype(np.uint16), GREY), np.zeros((4, 6, 1), np.uint8))


def test_array_in_model_shape_is_passed_through_without_copy():
    arr = np.ascontiguousarray(RAMP[..., None])
    assert load_pixels(arr, GREY) is arr
    rgb = np.zeros((4, 6, 3), np.uint8)
    assert load_pixels(rgb, RGB) is rgb


def test_array_of_other_size_is_resized():
    out = load_pixels(np.zeros((8, 12), np.uint8) + 9, GREY)
    assert out.shape == (4, 6, 1) and (out == 9).all()


def test_unsupported_source_type():
    with pytest.raises(ImageError, match=r"^<list>: unsupported input type; give a path, bytes"):
        open_image([1, 2])


# --- arrays -------------------------------------------------------------------------------------------

def test_array_layouts():
    assert array_to_image(RAMP).mode == "L"
    assert array_to_image(RAMP[..., None]).mode == "L"
    hwc = np.zeros((4, 6, 3), np.uint8)
    hwc[..., 0] = 200
    assert array_to_image(hwc).mode == "RGB" and array_to_image(hwc).getpixel((0, 0)) == (200, 0, 0)
    chw = np.moveaxis(hwc, -1, 0)  # (3, 4, 6)
    img = array_to_image(chw)
    assert img.size == (6, 4) and img.getpixel((5, 3)) == (200, 0, 0)
    assert array_to_image(np.zeros((4, 6, 4), np.uint8)).mode == "RGBA"
    assert array_to_image(np.zeros((1, 4, 6), np.uint8)).size == (6, 4)  # CHW grey
    assert array_to_image(np.zeros((3, 5, 3), np.uint8)).size == (5, 3)  # HWC wins when both could be channels


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4, 5), (5, 6, 2), (5, 6, 5)])
def test_arrays_that_are_not_images(shape):
    with pytest.raises(ImageError, match=rf"cannot interpret array of shape"):
        array_to_image(np.zeros(shape, np.uint8), "arr")


def test_empty_array():
    with pytest.raises(ImageError, match="^arr: empty array$"):
        array_to_image(np.zeros((0, 5), np.uint8), "arr")


def test_dtype_scaling():
    f01 = np.array([[0.0, 0.5, 1.0]], np.float32)
    np.testing.assert_array_equal(np.asarray(array_to_image(f01)), [[0, 128, 255]])
    f255 = np.array([[0.0, 2.0, 254.6, 300.0, -4.0]], np.float64)  # max > 1: already 0-255, clipped
    np.testing.assert_array_equal(np.asarray(array_to_image(f255)), [[0, 2, 255, 255, 0]])
    np.testing.assert_array_equal(np.asarray(array_to_image(np.array([[1.0, 1.0]]))), [[255, 255]])  # all-ones: 0-1
    np.testing.assert_array_equal(np.asarray(array_to_image(np.array([[True, False]]))), [[255, 0]])
    np.testing.assert_array_equal(np.asarray(array_to_image(np.array([[0, 255, 256, 65535]], np.uint16))),
                                  [[0, 0, 0, 255]])  # uint16: 16-bit data, scaled by 1/257 (by bit depth)
    np.testing.assert_array_equal(np.asarray(array_to_image(np.array([[0, 100, 255]], np.int32))), [[0, 100, 255]])
    # Issue 12: other integer arrays hold 0-255 values; a negative one is refused (was clipped to 0)
    with pytest.raises(ImageError, match=r"^<array>: int16 pixels outside 0-255; give uint8, or uint16 for 16-bit "
                                         r"images$"):
        array_to_image(np.array([[-5, 7]], np.int16))
    np.testing.assert_array_equal(np.asarray(array_to_image(np.array([[-1.0, 0.5]]))), [[0, 128]])


def test_bad_array_values():
    with pytest.raises(ImageError, match="NaN or infinite"):
        array_to_image(np.array([[0.0, np.nan]]))
    with pytest.raises(ImageError, match="NaN or infinite"):
        array_to_image(np.array([[0.0, np.inf]]))
    with pytest.raises(ImageError, match="unsupported array dtype complex128"):
        array_to_image(np.zeros((2, 2), np.complex128))


# --- modes --------------------------------------------------------------------------------------------

def test_rgb_to_grey_uses_itu_601_luma():
    img = Image.new("RGB", (6, 4), (255, 0, 0))
    assert (to_pixels(img, GREY) == 76).all()  # 0.299 * 255
    img = Image.new("RGB", (6, 4), (0, 255, 0))
    assert (to_pixels(img, GREY) == 150).all()  # 0.587 * 255


def test_grey_to_rgb_repeats_the_channel():
    out = to_pixels(Image.fromarray(RAMP), RGB)
    assert out.shape == (4, 6, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], RAMP)


def test_alpha_is_composited_on_black():
    rgba = Image.new("RGBA", (6, 4), (200, 100, 50, 128))
    out = to_pixels(rgba, RGB)
    np.testing.assert_allclose(out[0, 0], [100, 50, 25], atol=1)
    transparent = Image.new("RGBA", (6, 4), (255, 255, 255, 0))
    assert (to_pixels(transparent, RGB) == 0).all()
    la = Image.new("LA", (6, 4), (200, 0))
    assert (to_pixels(la, GREY) == 0).all()


def _palette_white(transparent: bool) -> Image.Image:
    p = Image.new("P", (6, 4), 1)
    p.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    if transparent:
        p.info["transparency"] = 1
    return p


def test_palette_with_transparency():
    assert (to_pixels(_palette_white(False), GREY) == 255).all()
    assert (to_pixels(_palette_white(True), GREY) == 0).all()  # transparent white on black


def test_float_mode_in_pixel_range():
    img = Image.fromarray(np.array([[0.0, 100.0, 255.0]], np.float32), mode="F")
    np.testing.assert_array_equal(to_pixels(img, InputSpec(1, 3, 1))[..., 0], [[0, 100, 255]])


WIDE = np.array([[0, 257 * 100, 65535]], np.uint16)


def test_16_bit_mode_is_scaled_not_clipped():
    img = Image.fromarray(WIDE)
    assert img.mode == "I;16"
    np.testing.assert_array_equal(to_pixels(img, InputSpec(1, 3, 1))[..., 0], [[0, 100, 255]])


def test_32_bit_mode_holding_16_bit_data_is_scaled_by_its_declared_depth():
    """Older Pillow opens 16-bit PNGs in mode I (32-bit); the PNG format says the data is 16-bit."""
    img = Image.fromarray(WIDE.astype(np.int32), mode="I")
    img.format = "PNG"  # as Image.open sets it
    np.testing.assert_array_equal(to_pixels(img, InputSpec(1, 3, 1))[..., 0], [[0, 100, 255]])


@pytest.mark.parametrize("orientation, expected", [(1, [0, 100, 127]), (3, [127, 100, 0])])
def test_signed_16_bit_tiff_is_scaled_by_its_declared_depth(tmp_path, orientation, expected):
    """Pillow opens a signed 16-bit TIFF (SampleFormat 2) in 32-bit mode I; BitsPerSample 16 says how to scale
    it, also after the EXIF/TIFF orientation was applied (Pillow's upright copy dropped the tags)."""
    path = tmp_path / "signed16.tif"
    Image.fromarray(np.array([[0, 25700, 32767]], np.uint16)).save(path, tiffinfo={339: 2, 274: orientation})
    with Image.open(path) as raw:
        assert raw.mode == "I" and raw.tag_v2[258] == (16,) and raw.tag_v2[339] == (2,)
    np.testing.assert_array_equal(load_pixels(path, InputSpec(1, 3, 1))[..., 0], [expected])


@pytest.mark.parametrize("from_file", [False, True])
def test_32_bit_mode_beyond_255_is_refused(tmp_path, from_file):
    # Issue 12: a mode-I image without a declared 16-bit depth (in memory, or a 32-bit TIFF) is scaled by bit
    # depth, never by content, so values beyond 255 are refused with a clear error (were guessed to be 16-bit).
    img = Image.fromarray(WIDE.astype(np.int32), mode="I")
    source = img
    if from_file:
        source = tmp_path / "wide.tif"
        img.save(source)
        with Image.open(source) as saved:
            assert saved.mode == "I" and saved.tag_v2[258] == (32,)  # a real 32-bit TIFF
    with pytest.raises(ImageError, match="^" + re.escape(f"{describe(source)}: int32 pixels outside 0-255; give "
                                                         "uint8, or uint16 for 16-bit images") + "$"):
        load_pixels(source, InputSpec(1, 3, 1))
    ok = Image.fromarray(np.array([[0, 100, 255]], np.int32), mode="I")  # 0-255 values in mode I are taken as-is
    np.testing.assert_array_equal(to_pixels(ok, InputSpec(1, 3, 1))[..., 0], [[0, 100, 255]])


def test_cmyk_converts():
    cmyk = Image.new("CMYK", (6, 4), (0, 255, 255, 0))  # red
    assert tuple(to_pixels(cmyk, RGB)[0, 0]) == (255, 0, 0)


def test_convert_mode_returns_the_same_image_when_already_right():
    img = Image.new("L", (6, 4))
    assert convert_mode(img, 1) is img
    assert convert_mode(Image.new("RGB", (6, 4)), 1).mode == "L"
    assert convert_mode(Image.new("L", (6, 4)), 3).mode == "RGB"


def test_resize_is_bilinear_to_width_by_height():
    img = Image.fromarray(np.tile(np.array([0, 255], np.uint8), (8, 6)))  # 8 rows x 12 cols of 0,255 stripes
    out = to_pixels(img, GREY)
    assert out.shape == (4, 6, 1)
    assert 100 < out.mean() < 155 and (out > 0).all() and (out < 255).all()  # blended, not nearest-neighbour


def test_conversion_errors_are_image_errors(monkeypatch):
    img = Image.new("RGB", (8, 8))

    def boom(*a, **k):
        raise RuntimeError("plugin broke")

    monkeypatch.setattr(Image.Image, "resize", boom)
    with pytest.raises(ImageError, match=r"^pic: cannot convert image: plugin broke$"):
        to_pixels(img, GREY, "pic")


# --- files and bytes: failures name the source and the reason ----------------------------------------

def test_missing_empty_folder_and_unreadable(tmp_path):
    with pytest.raises(ImageError, match=r"missing\.png: no such file$"):
        load_pixels(tmp_path / "missing.png", GREY)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty\.png: empty file \(0 bytes\)$"):
        load_pixels(tmp_path / "empty.png", GREY)
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ImageError, match=r"dir\.png: not a regular file \(a directory\)$"):
        load_pixels(tmp_path / "dir.png", GREY)


def test_permission_denied(tmp_path, monkeypatch):
    # Issue 12 opens image files with os.open (O_NONBLOCK, regular files only) instead of builtins.open, so the
    # denial is injected there (chmod cannot deny root). The file exists: only the permission can fail it.
    real_open = os.open
    path = tmp_path / "locked.png"
    path.write_bytes(_png(Image.fromarray(RAMP)))

    def denied(file, *a, **k):
        if os.fspath(file).endswith("locked.png"):
            raise PermissionError(13, "Permission denied", os.fspath(file))
        return real_open(file, *a, **k)

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(ImageError, match=r"locked\.png: unreadable: Permission denied$"):
        load_pixels(path, GREY)


def test_oversized_file_refused_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    path.write_bytes(_png(Image.fromarray(RAMP)))
    monkeypatch.setattr(preprocess, "MAX_FILE_BYTES", path.stat().st_size - 1)
    with pytest.raises(ImageError, match=r"big\.png: file too large"):
        load_pixels(path, GREY)
    monkeypatch.setattr(preprocess, "MAX_FILE_BYTES", path.stat().st_size)
    assert load_pixels(path, GREY).shape == (4, 6, 1)  # exactly at the limit is fine


def test_pixel_limit_is_checked_before_decoding(monkeypatch):
    data = _png(Image.new("L", (10, 10)))
    monkeypatch.setattr(preprocess, "MAX_PIXELS", 99)
    with pytest.raises(ImageError, match=r"image too large \(10x10 pixels; limit 99\)"):
        load_pixels(data, GREY)
    monkeypatch.setattr(preprocess, "MAX_PIXELS", 100)
    assert load_pixels(data, GREY).shape == (4, 6, 1)


def test_pillow_bomb_guard_is_reported_as_a_bomb(monkeypatch):
    data = _png(Image.new("L", (10, 10)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20)  # Pillow raises above 2x this
    with pytest.raises(ImageError, match="decompression bomb"):
        load_pixels(data, GREY)


@pytest.mark.parametrize("data, reason", [
    (b"definitely not an image", "not an image (unknown or unsupported format)"),
])
def test_undecodable_bytes(data, reason):
    with pytest.raises(ImageError) as err:
        load_pixels(data, GREY)
    assert err.value.source == f"<{len(data)} bytes>" and reason in err.value.reason


def test_truncated_png_is_reported(tmp_path):
    data = _png(Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)))
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=r"cut\.png: corrupt or truncated image"):
        load_pixels(path, GREY)


def test_formats_outside_the_allow_list_are_refused():
    data = _png(Image.fromarray(RAMP), format="PPM")
    assert Image.open(io.BytesIO(data)).format == "PPM"  # Pillow itself would read it
    with pytest.raises(ImageError, match="not an image"):
        load_pixels(data, GREY)


def test_decoder_value_errors_become_image_errors(monkeypatch):
    def broken(*a, **k):
        raise ValueError("bad header")

    monkeypatch.setattr(preprocess.Image, "open", broken)
    with pytest.raises(ImageError, match=r"corrupt image: bad header"):
        load_pixels(b"xx", GREY)


# --- orientation and frames ---------------------------------------------------------------------------

def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = _png(Image.fromarray(RAMP), format="JPEG", exif=exif.tobytes(), quality=100)
    img = open_image(data)
    assert img.size == (4, 6)  # 6 wide x 4 high on disk, upright it is 4 wide x 6 high


def test_broken_exif_is_an_image_error(monkeypatch):
    data = _png(Image.fromarray(RAMP), format="JPEG", exif=Image.Exif().tobytes())

    def broken(image):
        raise SyntaxError("bad exif")

    monkeypatch.setattr(preprocess.ImageOps, "exif_transpose", broken)
    with pytest.raises(ImageError, match=r"cannot read image data: bad exif"):
        open_image(data)


def test_tiff_orientation_tag_without_exif_block(tmp_path):
    img = Image.fromarray(RAMP)
    tags = Image.Exif()
    tags[0x0112] = 8
    path = tmp_path / "r.tif"
    img.save(path, tiffinfo={0x0112: 8})
    assert open_image(path).size == (4, 6)


def test_first_frame_of_an_animation(tmp_path):
    frames = [Image.new("L", (6, 4), 10), Image.new("L", (6, 4), 200)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert (load_pixels(path, GREY) == 10).all()
    opened = Image.open(path)
    opened.seek(1)  # a caller's image left on a later frame
    assert (load_pixels(opened, GREY) == 10).all()


# --- batches ------------------------------------------------------------------------------------------

def test_to_batch_layouts():
    pixels = np.arange(2 * 4 * 6 * 3, dtype=np.uint8).reshape(2, 4, 6, 3)
    nhwc = to_batch(pixels, RGB)
    assert nhwc.dtype == np.float32 and nhwc.shape == (2, 4, 6, 3)
    np.testing.assert_array_equal(nhwc, pixels)
    nchw = to_batch(list(pixels), InputSpec(4, 6, 3, layout="NCHW"))
    assert nchw.shape == (2, 3, 4, 6) and nchw.flags.c_contiguous
    np.testing.assert_array_equal(nchw[1, 2], pixels[1, ..., 2])
    already = np.zeros((1, 4, 6, 3), np.float32)
    assert to_batch(already, RGB) is already  # no copy when nothing changes


# --- edges the mutation run found unguarded ---------------------------------------------------------------

def test_limits_are_the_documented_ones():
    assert preprocess.MAX_PIXELS == 64 * 1024 * 1024
    assert preprocess.MAX_FILE_BYTES == 256 * 1024 * 1024


def test_oversized_file_message_gives_sizes_in_mib(tmp_path):
    path = tmp_path / "huge.png"
    with open(path, "wb") as fh:
        fh.truncate(300 * 1024 * 1024)  # sparse: no disk space used
    with pytest.raises(ImageError, match=r"huge\.png: file too large \(300 MiB; limit 256 MiB\)$"):
        load_pixels(path, GREY)


def test_channels_first_detection_uses_the_first_axis():
    chw = np.zeros((3, 5, 7), np.uint8)
    chw[1] = 90  # green plane
    img = array_to_image(chw)
    assert img.size == (7, 5) and img.getpixel((6, 4)) == (0, 90, 0)


def test_height_not_in_channel_counts_still_reads_as_hwc():
    hwc = np.zeros((5, 7, 3), np.uint8)
    hwc[..., 2] = 40
    img = array_to_image(hwc)
    assert img.size == (7, 5) and img.getpixel((0, 0)) == (0, 0, 40)


@pytest.mark.parametrize("shape", [(5, 6, 0), (2, 4, 6, 1)])
def test_odd_shapes_are_named_in_the_error(shape):
    with pytest.raises(ImageError, match=re.escape(f"cannot interpret array of shape {shape} as an image")):
        array_to_image(np.zeros(shape, np.uint8), "arr")


def test_float_arrays_just_above_one_are_0_to_255():
    np.testing.assert_array_equal(np.asarray(array_to_image(np.array([[0.0, 1.5, 2.0]]))), [[0, 2, 2]])


def test_integer_arrays_just_above_255_are_refused_uint16_is_16_bit():
    # Issue 12: an int32 array with a 256 is refused (was taken as 16-bit data); only uint16 means 16-bit.
    with pytest.raises(ImageError, match=r"^<array>: int32 pixels outside 0-255; give uint8, or uint16 for 16-bit "
                                         r"images$"):
        array_to_image(np.array([[0, 255, 256]], np.int32))
    np.testing.assert_array_equal(np.asarray(array_to_image(np.array([[0, 255, 256]], np.uint16))), [[0, 0, 0]])
    np.testing.assert_array_equal(np.asarray(array_to_image(np.array([[0, 255]], np.int32))), [[0, 255]])


def test_partial_alpha_on_black_is_exact():
    out = to_pixels(Image.new("RGBA", (6, 4), (200, 200, 200, 7)), RGB)
    assert tuple(out[0, 0]) == (5, 5, 5)  # 200 * 7/255, on an opaque black background


def test_smaller_images_are_upscaled():
    out = load_pixels(np.full((2, 3), 77, np.uint8), GREY)
    assert out.shape == (4, 6, 1) and (out == 77).all()


def test_grey_2d_array_in_model_size_skips_pillow():
    out = load_pixels(RAMP, GREY)
    assert out.shape == (4, 6, 1) and np.shares_memory(out, RAMP)  # a view: no decode, no copy


def test_bool_array_in_model_shape_is_converted_not_passed_through():
    out = load_pixels(np.ones((4, 6, 1), np.bool_), GREY)
    assert out.dtype == np.uint8 and (out == 255).all()


def test_layout_read_from_metadata_is_honoured():
    """A spec parsed from a model's JSON metadata holds runtime strings, equal to but not the literals."""
    import json

    spec = InputSpec.from_dict(json.loads('{"height": 4, "width": 6, "channels": 3, "layout": "NCHW"}'))
    assert to_batch(np.zeros((1, 4, 6, 3), np.uint8), spec).shape == (1, 3, 4, 6)


def test_four_channel_planes_first_are_rgba():
    img = array_to_image(np.zeros((4, 5, 7), np.uint8))
    assert img.mode == "RGBA" and img.size == (7, 5)


def test_small_hwc_rgba_is_not_mistaken_for_channels_first():
    img = array_to_image(np.zeros((3, 5, 4), np.uint8))  # 3 rows, 5 columns, RGBA
    assert img.mode == "RGBA" and img.size == (5, 3)


def test_a_single_column_grey_image():
    img = array_to_image(np.zeros((4, 1), np.uint8))
    assert img.mode == "L" and img.size == (1, 4)


def test_four_dimensional_arrays_are_refused_as_given():
    with pytest.raises(ImageError, match=re.escape("cannot interpret array of shape (3, 2, 2, 5)")):
        array_to_image(np.zeros((3, 2, 2, 5), np.uint8))


@pytest.mark.parametrize("values", [[-300, 1000, 70000], [-1, 0], [0, 256]])
def test_wide_integers_are_refused_not_clipped(values):
    # Issue 12: integers outside 0-255 are refused with the dtype named (were clipped: -300 -> 0, 70000 -> 255),
    # never wrapped around either.
    with pytest.raises(ImageError, match=r"^arr: int64 pixels outside 0-255; give uint8, or uint16 for 16-bit "
                                         r"images$"):
        array_to_image(np.array([values], np.int64), "arr")
