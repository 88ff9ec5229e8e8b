"""The shared preprocessing: every input form lands on identical pixels; bad input fails clearly."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from edgecls.runtime import ImageError, InputSpec, load_pixels, to_batch
from edgecls.runtime.preprocess import MAX_PIXELS

GREY = InputSpec(28, 28, 1)
RGB = InputSpec(32, 32, 3)


@pytest.fixture()
def digit(mnist) -> np.ndarray:
    return mnist.test.x[0]  # a real "7", uint8 (28,28,1)


def _encode(arr: np.ndarray, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr.squeeze()).save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "GIF", "TIFF", "WEBP"])
def test_lossless_formats_roundtrip_exactly(tmp_path, digit, fmt):
    kw = {"lossless": True} if fmt == "WEBP" else {}
    path = tmp_path / f"d.{fmt.lower()}"
    path.write_bytes(_encode(digit, fmt, **kw))
    assert np.array_equal(load_pixels(path, GREY), digit)
    assert np.array_equal(load_pixels(str(path), GREY), digit)
    assert np.array_equal(load_pixels(path.read_bytes(), GREY), digit)


def test_jpeg_close_to_source(digit):
    out = load_pixels(_encode(digit, "JPEG", quality=95), GREY)
    assert out.shape == (28, 28, 1) and np.abs(out.astype(int) - digit).mean() < 3


def test_numpy_forms_agree(digit):
    ref = load_pixels(digit, GREY)
    for arr in (digit[..., 0], digit, digit.transpose(2, 0, 1), digit.astype(np.float32) / 255.0,
                digit.astype(np.float64), digit.astype(np.uint16) * 257):
        assert np.array_equal(load_pixels(arr, GREY), ref), arr.dtype


def test_pil_modes_convert(digit):
    grey = Image.fromarray(digit[..., 0])
    assert np.array_equal(load_pixels(grey, GREY), digit)
    assert np.array_equal(load_pixels(grey.convert("RGB"), GREY), digit)  # luma of grey RGB is the grey
    cmyk = load_pixels(grey.convert("RGB").convert("CMYK"), RGB)
    assert cmyk.shape == (32, 32, 3)


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    ramp = (np.arange(28 * 28, dtype=np.uint32).reshape(28, 28) * 83).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)
    out = load_pixels(path, GREY)[..., 0]
    assert out.max() > 200 and np.array_equal(out, (ramp // 257).astype(np.uint8))


def test_rgba_composited_on_black():
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:16, :, 3] = 255  # top half opaque red, bottom half transparent
    out = load_pixels(rgba, RGB)
    assert (out[:16, :, 0] == 200).all() and (out[16:] == 0).all()


def test_exif_orientation_applied(tmp_path):
    img = np.zeros((32, 32, 3), np.uint8)
    img[:, :8] = 255  # white stripe on the left
    exif = Image.Exif()
    exif[0x0112] = 3  # rotate 180
    path = tmp_path / "rot.jpg"
    Image.fromarray(img).save(path, exif=exif, quality=100)
    out = load_pixels(path, RGB)
    assert out[:, -8:].mean() > 200 and out[:, :8].mean() < 50


def test_multiframe_gif_uses_first_frame(tmp_path):
    frames = [Image.fromarray(np.full((28, 28), v, np.uint8)) for v in (10, 250)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert load_pixels(path, GREY).mean() < 20


def test_resize_to_model_size():
    big = np.random.default_rng(0).integers(0, 255, (300, 200, 3), dtype=np.uint8)
    assert load_pixels(big, RGB).shape == (32, 32, 3)
    assert load_pixels(big, GREY).shape == (28, 28, 1)


def test_batch_layouts(digit):
    nhwc = to_batch([digit, digit], GREY)
    nchw = to_batch([digit, digit], InputSpec(28, 28, 1, layout="NCHW"))
    assert nhwc.dtype == np.float32 and nhwc.shape == (2, 28, 28, 1) and nchw.shape == (2, 1, 28, 28)
    assert nhwc.max() == digit.max()  # raw 0-255 pixels: no normalisation outside the model


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_bytes(b"definitely not an image"), "not an image"),
        (lambda p: p.write_bytes(_encode(np.zeros((64, 64), np.uint8), "PNG")[:60]), "truncated"),
    ],
    ids=["zero-bytes", "not-image", "truncated"],
)
def test_bad_files_name_the_file_and_reason(tmp_path, make, reason):
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(ImageError) as err:
        load_pixels(path, GREY)
    assert str(path) in str(err.value) and reason in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_pixels(tmp_path / "nope.png", GREY)


def test_decompression_bomb_refused(tmp_path):
    side = int(MAX_PIXELS**0.5) + 64  # a mostly-empty PNG that claims more pixels than allowed
    path = tmp_path / "bomb.png"
    Image.new("1", (side, side)).save(path, optimize=True)
    assert path.stat().st_size < 2_000_000
    with pytest.raises(ImageError, match="too large|decompression bomb"):
        load_pixels(path, GREY)


def test_bad_arrays():
    with pytest.raises(ImageError, match="cannot interpret"):
        load_pixels(np.zeros((2, 3, 4, 5), np.uint8), GREY)
    with pytest.raises(ImageError, match="NaN"):
        load_pixels(np.full((28, 28), np.nan, np.float32), GREY)
