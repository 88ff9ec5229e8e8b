"""The one place where an image becomes model input.

Training (data loaders), export validation and the runtime all call these functions,
so a picture is decoded, oriented, converted and resized the same way everywhere.
The output is raw pixels (uint8, HxWxC); normalisation is the model's job.
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO, Iterable, Optional, Sequence, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError
from .files import read_regular_file
from .spec import InputSpec
from .transforms import Pipeline

ImageSource = Union[str, os.PathLike, bytes, bytearray, Image.Image, np.ndarray]

# Pillow's own guard is 89 Mpx (warning) / 179 Mpx (error). A classifier never needs
# that much; refuse beyond this so a crafted file cannot exhaust memory.
MAX_PIXELS = 64 * 1024 * 1024
MAX_FILE_BYTES = 256 * 1024 * 1024

_RESAMPLE = Image.Resampling.BILINEAR

# Declared pipelines look at the image itself (ink, background, content box) before it is brought to the
# model's size; they see it at up to this many times the model's input size (a 4000 px photo is not needed
# whole to find a digit, and this bounds memory and time per image).
WORK_FACTOR = 4

# The formats edgecls reads, most common first. Naming them skips probing every Pillow plugin and
# keeps rarely-used decoders away from untrusted files.
DECODERS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")


def describe(source: ImageSource) -> str:
    """A short human name for a source, used in error messages."""
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, (bytes, bytearray)):
        return f"<{len(source)} bytes>"
    if isinstance(source, Image.Image):
        return f"<PIL image {source.mode} {source.size[0]}x{source.size[1]}>"
    if isinstance(source, np.ndarray):
        return f"<array {source.dtype} {source.shape}>"
    return f"<{type(source).__name__}>"


def open_image(source: ImageSource) -> Image.Image:
    """Decode any supported source into a loaded PIL image (first frame, EXIF-upright)."""
    name = describe(source)
    if isinstance(source, Image.Image):
        image = source
        if getattr(image, "is_animated", False):
            image.seek(0)  # a caller's image may sit on any frame; decoded files start on frame 0
    elif isinstance(source, np.ndarray):
        return array_to_image(source, name)
    elif isinstance(source, (bytes, bytearray)):
        image = _decode(io.BytesIO(bytes(source)), name)
    elif isinstance(source, (str, os.PathLike)):
        image = _decode_file(source, name)
    else:
        raise ImageError(name, "unsupported input type; give a path, bytes, a PIL image or a numpy array")
    try:
        if "exif" in image.info or image.format in _TAGGED_FORMATS:  # skip the EXIF parse when there is none
            upright = ImageOps.exif_transpose(image) or image
            if upright is not image:  # Pillow's copy drops what the file declares; convert_mode reads the bit
                upright.format = image.format  # depth from it (a signed 16-bit TIFF opens in 32-bit mode I)
                if hasattr(image, "tag_v2"):
                    upright.tag_v2 = image.tag_v2
            image = upright
        return image
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types on broken EXIF
        raise ImageError(name, f"cannot read image data: {exc}") from None


_TAGGED_FORMATS = frozenset({"TIFF", "MPO"})  # orientation may live in tags rather than info["exif"]


def _decode_file(path: Union[str, os.PathLike], name: str) -> Image.Image:
    """Read the file in one go (a FIFO never blocks, a device is never read), then decode it from memory:
    Pillow's many small chunk reads through a file handle cost more than the decoding of a small image."""
    try:
        data = read_regular_file(path, MAX_FILE_BYTES)
    except ValueError as exc:
        size = exc.args[0]
        if size == 0:
            raise ImageError(name, "empty file (0 bytes)") from None
        raise ImageError(name, f"file too large ({size >> 20} MiB; limit {MAX_FILE_BYTES >> 20} MiB)") from None
    except FileNotFoundError:
        raise ImageError(name, "no such file") from None
    except IsADirectoryError:
        raise ImageError(name, "not a regular file (a directory)") from None
    except PermissionError as exc:
        raise ImageError(name, f"unreadable: {exc.strerror or exc}") from None
    except OSError as exc:  # a FIFO, device or socket; a symlink loop
        raise ImageError(name, exc.strerror or str(exc)) from None
    return _decode(io.BytesIO(data), name)


def _decode(fp: BinaryIO, name: str) -> Image.Image:
    try:
        # Pillow warns above 89 Mpx and raises above 179 Mpx; our own check below refuses anything over
        # MAX_PIXELS before a single pixel is decoded, so the bomb guard never depends on the warning.
        image = Image.open(fp, formats=DECODERS)
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise ImageError(name, f"image too large ({width}x{height} pixels; limit {MAX_PIXELS})")
        image.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(name, "refused: decompression bomb (image claims too many pixels)") from None
    except UnidentifiedImageError:
        raise ImageError(name, "not an image (unknown or unsupported format)") from None
    except OSError as exc:
        raise ImageError(name, f"corrupt or truncated image: {exc}") from None
    except (ValueError, SyntaxError, EOFError) as exc:
        raise ImageError(name, f"corrupt image: {exc}") from None
    return image


def array_to_image(array: np.ndarray, name: str = "<array>") -> Image.Image:
    """Turn an HxW, HxWxC or CxHxW array (uint8/uint16/float/bool) into a PIL image."""
    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)  # CHW -> HWC
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
        raise ImageError(name, f"cannot interpret array of shape {arr.shape} as an image")
    if arr.size == 0:
        raise ImageError(name, "empty array")
    arr = _to_uint8(arr, name)
    mode = "L" if arr.ndim == 2 else ("RGB" if arr.shape[-1] == 3 else "RGBA")
    return Image.fromarray(np.ascontiguousarray(arr), mode=mode)


def _to_uint8(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise ImageError(name, "array holds NaN or infinite values")
        scale = 255.0 if arr.max(initial=0.0) <= 1.0 else 1.0  # 0-1 floats or 0-255 floats
        return np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8)
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 2:  # 16-bit: scaled by bit depth, never by content,
        return (arr // 257).astype(np.uint8)  # so a dark image stays dark
    if np.issubdtype(arr.dtype, np.integer):  # other ints (numpy's default int64 included) hold 0-255 values
        if arr.min(initial=0) < 0 or arr.max(initial=0) > 255:
            raise ImageError(name, f"{arr.dtype} pixels outside 0-255; give uint8, or uint16 for 16-bit images")
        return arr.astype(np.uint8)
    raise ImageError(name, f"unsupported array dtype {arr.dtype}")


def convert_mode(image: Image.Image, channels: int, name: str = "<image>") -> Image.Image:
    """Bring any Pillow mode to L or RGB; 16-bit is scaled, not clipped; alpha is composited on black."""
    target = "L" if channels == 1 else "RGB"
    if image.mode == target:
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(image)
        if image.mode == "I" and _bits_per_sample(image) == 16:  # 16-bit data held in a 32-bit mode
            arr = np.clip(arr, 0, 65535).astype(np.uint16)
        return array_to_image(arr, name).convert(target)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "RGBa", "La", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert(target)


def _bits_per_sample(image: Image.Image) -> int:
    """Bit depth a file declares (TIFF tag 258; PNG stores at most 16 bits per sample)."""
    if image.format == "PNG":
        return 16
    bits = getattr(image, "tag_v2", {}).get(258) if hasattr(image, "tag_v2") else None
    return int(bits[0] if isinstance(bits, tuple) else bits) if bits else 32


def to_pixels(image: Image.Image, spec: InputSpec, name: str = "<image>") -> np.ndarray:
    """Convert and resize a decoded image to the model's size: uint8 array HxWxC."""
    try:
        image = convert_mode(image, spec.channels, name)
        if image.size != (spec.width, spec.height):
            image = image.resize((spec.width, spec.height), _RESAMPLE)
        # frombuffer(tobytes()) is ~6 us cheaper per image than np.asarray(image) on small images
        arr = np.frombuffer(image.tobytes(), dtype=np.uint8).reshape(spec.height, spec.width, -1)
    except ImageError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow conversion errors vary by plugin
        raise ImageError(name, f"cannot convert image: {exc}") from None
    return arr


def working_pixels(source: ImageSource, spec: InputSpec) -> np.ndarray:
    """Decode, orient and convert a source for a declared pipeline: uint8 HxWxC at its own size, shrunk
    (aspect kept) only when larger than WORK_FACTOR times the model's input."""
    cap = WORK_FACTOR * max(spec.height, spec.width)
    if isinstance(source, np.ndarray) and source.dtype == np.uint8:
        arr = source[..., None] if source.ndim == 2 else source
        if arr.ndim == 3 and arr.shape[-1] == spec.channels and max(arr.shape[:2]) <= cap and arr.size:
            return arr
    name = describe(source)
    image = open_image(source)
    try:
        image = convert_mode(image, spec.channels, name)
        width, height = image.size
        if max(width, height) > cap:
            scale = cap / max(width, height)
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            image = image.resize(size, _RESAMPLE, reducing_gap=2.0)
        arr = np.frombuffer(image.tobytes(), dtype=np.uint8).reshape(image.size[1], image.size[0], -1)
    except ImageError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow conversion errors vary by plugin
        raise ImageError(name, f"cannot convert image: {exc}") from None
    return arr


def prepare_batch(images: Sequence[np.ndarray], spec: InputSpec, pipeline: Pipeline) -> np.ndarray:
    """Working images of any sizes -> model-ready uint8 (N,H,W,C)."""
    return prepare_with_stats(images, spec, pipeline)[0]


def prepare_with_stats(images: Sequence[np.ndarray], spec: InputSpec, pipeline: Pipeline
                       ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Working images of any sizes -> model-ready uint8 (N,H,W,C) and the pipeline's per-image statistics.
    Same-sized images run through the pipeline together, so a folder of equal-sized files costs a few
    vectorised numpy passes per batch."""
    shape = (spec.height, spec.width)
    if len(images) == 1:  # one image (a predict call): a view, never written into (steps copy before changing)
        return pipeline.apply(images[0][None], shape)
    first = images[0].shape if len(images) else None
    if first is not None and all(image.shape == first for image in images):  # one size (a folder of scans)
        return pipeline.apply(np.stack(images), shape)
    out = np.empty((len(images), spec.height, spec.width, spec.channels), np.uint8)
    stats: dict[str, np.ndarray] = {}
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(images):
        groups.setdefault(image.shape, []).append(i)
    for index in groups.values():
        out[index], measured = pipeline.apply(np.stack([images[i] for i in index]), shape)
        for key, values in measured.items():
            stats.setdefault(key, np.full(len(images), np.nan))[index] = values
    return out, stats


def load_pixels(source: ImageSource, spec: InputSpec, pipeline: Optional[Pipeline] = None) -> np.ndarray:
    """Any source -> uint8 HxWxC pixels at the model's size, through the model's declared pipeline.

    Without one (models exported before declared preprocessing) the image is stretched to the input
    size, and arrays already in shape skip Pillow."""
    if pipeline is not None and pipeline.declared:
        return prepare_batch([working_pixels(source, spec)], spec, pipeline)[0]
    if isinstance(source, np.ndarray) and source.dtype == np.uint8:
        arr = source[..., None] if source.ndim == 2 else source
        if arr.shape == (spec.height, spec.width, spec.channels):
            return arr
    return to_pixels(open_image(source), spec, describe(source))


def to_batch(pixels: Union[np.ndarray, Iterable[np.ndarray]], spec: InputSpec) -> np.ndarray:
    """HxWxC pixels (a list, or an (N,H,W,C) array) -> the model's float32 batch in its layout.

    The one place the NHWC -> NCHW change happens, for validation, calibration and inference."""
    batch = pixels if isinstance(pixels, np.ndarray) else np.stack(list(pixels))
    # onnxruntime wants contiguous input; no copy when already so
    return np.ascontiguousarray(layout_view(batch.astype(np.float32, copy=False), spec))


def layout_view(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """(N,H,W,C) pixels seen in the model's layout, any dtype, no copy: a batch-1 call copies this straight into
    its bound float32 input, converting as it goes."""
    return pixels.transpose(0, 3, 1, 2) if spec.layout == "NCHW" else pixels
