"""Declared preprocessing: the named steps a model lists in its metadata (`edgecls.preprocess`).

A model trained on MNIST expects white ink on black, a digit fitted into a 20x20 box and centred by
its centre of mass; a photo model expects the object undistorted. Users bring ink on paper, big
canvases and phone pictures. Each model therefore declares, as data, how any image is brought to
what it was trained on, and the same steps run in training, export validation and inference.

Every step works on a batch of same-sized images (N x H x W x C, 0-255; uint8 until a step changes
values, then float32) plus one region of interest per image, so the data-dependent work (polarity, levels, bounding box, centre of
mass) is vectorised over the batch. The last step resamples each region into the model's input
size with one separable, antialiased (PIL-style triangle) filter: out = Wy @ image @ Wx^T, with
per-image weight matrices, so crop, scale and placement cost one batched matrix product.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .errors import EdgeclsError
from .unsure import midtone_fraction

Step = dict[str, Any]


@dataclass
class Work:
    """A batch on its way through the pipeline."""

    pixels: np.ndarray  # (N, H, W, C), 0-255: uint8 until a step changes values, then float32
    box: np.ndarray  # float64 (N, 4): y0, x0, y1, x1, the region of interest in input pixel coordinates
    out: np.ndarray | None = None  # (N, h, w, C), uint8 or float32: set by the resampling (terminal) step
    stats: dict[str, np.ndarray] = field(default_factory=dict)  # per-image measurements (the unsure flag's input check)
    _edges: tuple = field(default=(None, None, None), repr=False)  # (array, border, background) last measured
    _region: tuple = field(default=(None, None, None), repr=False)  # (box, rows, columns) last computed
    _frame: np.ndarray | None = field(default=None, repr=False)  # the whole-frame box `of` made

    @classmethod
    def of(cls, pixels: np.ndarray) -> "Work":
        n, h, w = pixels.shape[:3]
        box = np.zeros((n, 4))
        box[:, 2:] = h, w
        # uint8 stays uint8 while steps only measure (a quarter of the memory traffic); the first step that
        # changes values works in float32. Steps never write into this array: it may be the caller's.
        return cls(pixels if pixels.dtype == np.uint8 else pixels.astype(np.float32, copy=False), box, _frame=box)

    def whole(self) -> bool:
        """Every image's region is still its whole frame (steps replace the box, never write into it)."""
        if self.box is self._frame:
            return True
        h, w = self.pixels.shape[1:3]
        return bool((self.box == np.array([0.0, 0.0, h, w])).all())

    def edges(self, array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(border, background) of `array` (the pixels or the output): measured once per array, so steps that
        read the same unchanged pixels (polarity, then levels) do not measure them again."""
        seen, border, bg = self._edges
        if seen is not array:
            border = _border(_luma(array))
            bg = _background(None, border)
            self._edges = (array, border, bg)
        return border, bg

    def region(self) -> tuple[np.ndarray, np.ndarray]:
        """Boolean (N, H) rows and (N, W) columns whose pixel centres lie inside each image's box: computed once
        per box (measure and fit read the same one)."""
        box, rows, cols = self._region
        if box is not self.box:
            h, w = self.pixels.shape[1:3]
            box, ys, xs = self.box, _centres(h), _centres(w)
            if h == w:  # both axes in one pass
                rows, cols = (ys >= box[:, :2].T[..., None]) & (ys <= box[:, 2:].T[..., None])  # (2, N, H)
            else:
                rows = (ys >= box[:, :1]) & (ys <= box[:, 2:3])
                cols = (xs >= box[:, 1:2]) & (xs <= box[:, 3:4])
            self._region = (box, rows, cols)
        return rows, cols


@dataclass(frozen=True)
class Transform:
    fn: Callable[..., None]
    params: Mapping[str, tuple[type, Any, Callable[[Any], bool], str]]  # name -> (type, default, check, rule)
    terminal: bool = False  # resamples to the model size; at most one, and only `after` steps may follow it
    after: bool = False  # may also run on the resampled output
    doc: str = ""


TRANSFORMS: dict[str, Transform] = {}


def register(name: str, terminal: bool = False, after: bool = False,
             **params: tuple[type, Any, Callable[[Any], bool], str]):
    """Add a step to the one registry the runtime, the exporter and training all read."""

    def wrap(fn: Callable[..., None]) -> Callable[..., None]:
        TRANSFORMS[name] = Transform(fn, params, terminal, after, (fn.__doc__ or "").strip().splitlines()[0])
        return fn

    return wrap


def _fraction(v: Any) -> bool:
    return 0.0 <= v <= 1.0


# ---------------------------------------------------------------------------------------------- helpers


@lru_cache(maxsize=64)
def _centres(n: int, dtype: type = np.float64) -> np.ndarray:
    """Pixel centres 0.5, 1.5, ... n - 0.5 along one axis (read-only: shared by every call)."""
    centres = np.arange(n, dtype=dtype) + dtype(0.5)
    centres.flags.writeable = False
    return centres


def _luma(pixels: np.ndarray) -> np.ndarray:
    """(N,H,W) brightness: the grey channel (in its own dtype), or ITU-R 601 luma of RGB (as Pillow's
    convert('L')), float32."""
    if pixels.shape[-1] == 1:
        return pixels[..., 0]
    return pixels.astype(np.float32, copy=False) @ np.array([0.299, 0.587, 0.114], np.float32)


def _border(luma: np.ndarray) -> np.ndarray:
    """(N, perimeter) pixels of the one-pixel frame: where the background shows on almost any picture."""
    return np.concatenate([luma[:, 0, :], luma[:, -1, :], luma[:, 1:-1, 0], luma[:, 1:-1, -1]], axis=1)


def _background(luma: np.ndarray | None, border: np.ndarray | None = None) -> np.ndarray:
    """(N,) median of the border, float32: the background on almost any picture (one partition, no sort)."""
    border = _border(luma) if border is None else border
    k = border.shape[1] // 2
    return np.partition(border, k, axis=1)[:, k].astype(np.float32)


def _edge_padded(luma: np.ndarray, before: int, after: int) -> np.ndarray:
    """(N, H, W) with its edge rows and columns repeated `before` / `after` times (np.pad's "edge" mode)."""
    n, h, w = luma.shape
    out = np.empty((n, h + before + after, w + before + after), luma.dtype)
    out[:, before : before + h, before : before + w] = luma
    out[:, before : before + h, :before] = luma[:, :, :1]
    out[:, before : before + h, before + w :] = luma[:, :, -1:]
    out[:, :before] = out[:, before : before + 1]
    out[:, before + h :] = out[:, before + h - 1 : before + h]
    return out


def _box_blur(luma: np.ndarray, k: int) -> np.ndarray:
    """Mean over k x k windows (same size output), via cumulative sums: vectorised, any k."""
    if k <= 1:
        return luma
    pad = k // 2
    padded = _edge_padded(luma, pad, k - 1 - pad)
    n, ph, pw = padded.shape
    c = np.zeros((n, ph + 1, pw + 1))  # a zero row and column ahead of the sums
    np.cumsum(np.cumsum(padded, axis=1, dtype=np.float64), axis=2, out=c[:, 1:, 1:])
    s = c[:, k:, k:] - c[:, :-k, k:] - c[:, k:, :-k] + c[:, :-k, :-k]
    return (s / (k * k)).astype(np.float32)


def _needed(network: tuple[tuple[int, int], ...], result: int) -> tuple[tuple[int, int, bool, bool], ...]:
    """A compare-exchange network (each pair: low slot gets the min, high slot the max) with, per step, whether
    its min and its max are read later on the way to slot `result`: the others need not be computed."""
    live, steps = {result}, []
    for low, high in reversed(network):
        steps.append((low, high, low in live, high in live))
        if low in live or high in live:
            live |= {low, high}
    return tuple(reversed(steps))


# Paeth's median-of-9 sorting network: 19 compare-exchanges leave the median in slot 4.
_MEDIAN9 = _needed(((1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8), (0, 3), (5, 8),
                    (4, 7), (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4), (4, 2)), result=4)


def _median3x3(luma: np.ndarray) -> np.ndarray:
    """Median of each pixel's 3x3 neighbourhood (edges repeated), exactly, via a sorting network of
    elementwise min/max: a few dozen whole-image operations instead of a per-pixel sort."""
    n, h, w = luma.shape
    padded = _edge_padded(luma, 1, 1)
    p = [padded[:, dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)]
    for low, high, want_min, want_max in _MEDIAN9:
        p[low], p[high] = (np.minimum(p[low], p[high]) if want_min else None,
                           np.maximum(p[low], p[high]) if want_max else None)
    return p[4]


def _weights(n_out: int, n_in: int, start: np.ndarray, scale: np.ndarray, offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Resampling matrices (S, n_out, n_in) for `start`, `scale` and `offset` of one shape S (N images along one
    axis, or (2, N) for both axes of square images at once), and which outputs fall inside the image.

    Output pixel o (centre o + 0.5) reads input position start + (o + 0.5 - offset) / scale through a
    triangle filter whose support widens when shrinking (antialiasing), as Pillow's BILINEAR does."""
    centre = (start[..., None] + (_centres(n_out) - offset[..., None]) / scale[..., None]).astype(np.float32)
    support = np.maximum(1.0, 1.0 / scale).astype(np.float32)[..., None, None]
    w = _centres(n_in, np.float32) - centre[..., None]  # (..., out, in)
    np.abs(w, out=w)
    w /= support
    np.subtract(1.0, w, out=w)
    np.maximum(w, 0.0, out=w)
    total = w.sum(axis=-1, keepdims=True)
    inside = (centre >= 0) & (centre <= n_in) & (total[..., 0] > 0)
    np.divide(w, total, out=w, where=total > 0)
    w *= inside[..., None]
    return w, inside


def _resample(work: Work, shape: tuple[int, int], scale: np.ndarray, offset: np.ndarray, fill: float) -> None:
    """Map each image's box onto the output: input box start (y, x) sits at output `offset` (N, 2), `scale`
    (N, 2) out px per in px."""
    px = work.pixels
    n, h, w, c = px.shape
    oh, oww = shape
    out = np.empty((n, oh, oww, c), np.float32)
    # Whole-pixel shifts at scale 1 (data-set images, already the right size) are exact copies: gather them.
    shift = work.box[:, :2] - offset
    copy = ((scale == 1) & (shift == shift.round())).all(axis=1)
    shift_y, shift_x = shift[:, 0], shift[:, 1]
    rest = ~copy
    if (oh, oww) == (h, w):
        same = copy & ~shift.any(axis=1)
        if same.all():  # a batch already in place (data-set images): one copy, in its own dtype
            work.out = px.copy()
            return
        if same.any():  # nothing moves: the image itself
            out[same] = px[same]
            copy &= ~same
    if copy.any() and copy.sum() <= SLICED_COPIES:  # a few images: one slice each beats building a gather
        for i in np.flatnonzero(copy):
            out[i] = _shifted(px[i], int(shift_y[i]), int(shift_x[i]), (oh, oww), fill)
    elif copy.any():
        iy = np.arange(oh)[None, :] + shift_y[copy, None].astype(np.intp)  # (M, oh) source rows
        ix = np.arange(oww)[None, :] + shift_x[copy, None].astype(np.intp)
        ok = ((iy >= 0) & (iy < h))[:, :, None] & ((ix >= 0) & (ix < w))[:, None, :]
        flat = (np.flatnonzero(copy)[:, None, None] * (h * w) + np.clip(iy, 0, h - 1)[:, :, None] * w
                + np.clip(ix, 0, w - 1)[:, None, :])  # one gather from the (N*H*W, C) pixel table
        picked = px.reshape(-1, c)[flat].astype(np.float32, copy=False)
        picked[~ok] = fill
        out[copy] = picked
    if rest.any():
        start, scale, offset = work.box[rest, :2], scale[rest], offset[rest]
        if (oh, h) == (oww, w):  # both axes in one pass: (2, M, out, in)
            (wy, wx), (in_y, in_x) = _weights(oh, h, start.T, scale.T, offset.T)
        else:
            wy, in_y = _weights(oh, h, start[:, 0], scale[:, 0], offset[:, 0])
            wx, in_x = _weights(oww, w, start[:, 1], scale[:, 1], offset[:, 1])
        planes = np.moveaxis(px[rest].astype(np.float32, copy=False), 3, 1)  # (M, C, H, W)
        res = np.moveaxis(wy[:, None] @ planes @ np.swapaxes(wx, 1, 2)[:, None], 1, 3)  # (M, oh, ow, C)
        if fill:
            outside = ~(in_y[:, :, None] & in_x[:, None, :])
            res = np.where(outside[..., None], np.float32(fill), res)
        out[rest] = res
    work.out = out


SLICED_COPIES = 4


def _shifted(image: np.ndarray, dy: int, dx: int, shape: tuple[int, int], fill: float) -> np.ndarray:
    """`image` (H,W,C) read at whole-pixel offset (dy, dx) into a float32 `shape` frame, `fill` outside it:
    out[y, x] = image[y + dy, x + dx]."""
    h, w = image.shape[:2]
    out = np.full((*shape, image.shape[2]), fill, np.float32)
    y0, y1 = max(0, -dy), min(shape[0], h - dy)
    x0, x1 = max(0, -dx), min(shape[1], w - dx)
    if y0 < y1 and x0 < x1:
        out[y0:y1, x0:x1] = image[y0 + dy : y1 + dy, x0 + dx : x1 + dx]
    return out


def _box_size(work: Work) -> np.ndarray:
    """(N, 2) height and width of each image's region (never zero)."""
    return np.maximum(work.box[:, 2:] - work.box[:, :2], 1e-6)


# ---------------------------------------------------------------------------------------------- the steps


@register("polarity", background=(str, "dark", lambda v: v in ("dark", "light"), "dark | light"))
def polarity(work: Work, shape: tuple[int, int], background: str) -> None:
    """Invert images whose background is not the model's (ink on paper -> white on black for digits).

    The background is the median of the image's border; the ink is whichever extreme lies further
    from it. A blank image has no extreme on either side and is left alone."""
    luma = _luma(work.pixels)
    bg = work.edges(work.pixels)[1]
    if background == "dark" and luma.dtype == np.uint8:
        # On a black background (bg 0, and no pixel below 0) no ink can be darker: only the others are looked at.
        other = bg != 0
        if not other.any():
            return
        invert = np.zeros(len(luma), bool)
        lo = luma[other].min(axis=(1, 2)).astype(np.float32)
        hi = luma[other].max(axis=(1, 2)).astype(np.float32)
        invert[other] = (bg[other] - lo) > (hi - bg[other])
    else:
        lo, hi = luma.min(axis=(1, 2)).astype(np.float32), luma.max(axis=(1, 2)).astype(np.float32)
        darker_ink = (bg - lo) > (hi - bg)
        invert = darker_ink if background == "dark" else ~darker_ink & (hi > bg)
    if invert.any():
        flipped = work.pixels.astype(np.float32)  # a copy: never write into the caller's array
        flipped[invert] = 255.0 - flipped[invert]
        work.pixels = flipped


@register("levels", after=True, floor=(float, 0.0, _fraction, "0..1"),
          noise=(float, 0.0, lambda v: 0.0 <= v <= 10.0, "0..10 (multiples of the paper's grain)"))
def levels(work: Work, shape: tuple[int, int], floor: float, noise: float) -> None:
    """Stretch background to 0 and ink to 255 (grey paper, faint pencil), then zero what is below `floor`,
    raised per image to `noise` times the grain of its border (robust std: 1.4826 x median absolute
    deviation), so noisy paper loses its grain while a clean image is left exactly as it is.

    Background: median of the border; ink: the brightest pixel.
    A blank image (no contrast) becomes all zeros rather than amplified noise. After the resampling
    step it works on the model-sized output (thin strokes shrunk to grey get their full ink back)."""
    src = work.pixels if work.out is None else work.out
    luma = _luma(src)
    border, bg = work.edges(src)
    top = luma.max(axis=(1, 2))
    if floor == 0 and not bg.any() and (top == 255).all() and (noise == 0 or src.dtype == np.uint8 or
                                                                border.min() >= 0):
        return  # full range on a black background (data-set images): gain 1, no grain, nothing changes
    span = top.astype(np.float32) - bg
    gain = np.divide(255.0, span, out=np.zeros_like(span), where=span > 8.0)  # < 8 grey levels: nothing there
    cut = np.full(len(luma), floor, np.float64)
    if noise:
        k = border.shape[1] // 2
        mad = np.zeros_like(bg)  # a non-negative border with median 0 has |b - 0| of median 0: no grain
        grain = (bg != 0) | (border.min(axis=1) < 0)
        if grain.any():
            mad[grain] = np.partition(np.abs(border[grain] - bg[grain, None]), k, axis=1)[:, k]
        cut = np.maximum(cut, np.minimum(1.0, noise * 1.4826 * mad * gain / 255.0))
    # one affine map, then one clip: x' = (x - bg) * gain / (1 - cut) - 255 cut / (1 - cut)
    keep = np.divide(1.0, 1.0 - cut, out=np.zeros_like(cut), where=cut < 1.0)
    gain, shift = gain * keep, 255.0 * cut * keep
    # Images already at full range on a black background (most data-set images) map onto themselves: only the
    # others are computed, so a folder of MNIST-like files pays for the few that need it.
    change = (bg != 0) | (gain != 1.0) | (shift != 0)
    if not change.any():
        return
    part = src[change] - bg[change, None, None, None].astype(np.float32)
    part *= gain[change, None, None, None].astype(np.float32)
    part -= shift[change, None, None, None].astype(np.float32)
    np.clip(part, 0.0, 255.0, out=part)
    if change.all():
        x = part
    else:
        x = src.astype(np.float32)  # a copy: never written in place, the input may be the caller's array
        x[change] = part
    if src is work.pixels:
        work.pixels = x
    else:
        work.out = x


@register("crop_to_content", threshold=(float, 0.25, _fraction, "0..1 of full scale"),
          margin=(float, 0.0, lambda v: 0.0 <= v <= 1.0, "0..1 of the content's longer side"))
def crop_to_content(work: Work, shape: tuple[int, int], threshold: float, margin: float) -> None:
    """Narrow the region to the bounding box of the ink (pixels brighter than `threshold`).

    Measured on a slightly blurred copy when the image is larger than the model input, so paper
    noise does not count as ink. An image with no ink keeps its whole frame."""
    luma = _luma(work.pixels)
    n, h, w = luma.shape
    k = max(1, round(min(h, w) / max(shape)))
    mask = _box_blur(luma, k) >= threshold * 255.0
    if h == w:  # both axes in one pass
        lines = np.empty((2, n, h), bool)  # rows, columns holding ink
        rows, cols = mask.any(axis=2, out=lines[0]), mask.any(axis=1, out=lines[1])
        first, after = lines.argmax(axis=2).T, h - lines[:, :, ::-1].argmax(axis=2).T
    else:
        rows, cols = mask.any(axis=2), mask.any(axis=1)
        first = np.stack([rows.argmax(axis=1), cols.argmax(axis=1)], axis=1)
        after = np.array([h, w]) - np.stack([rows[:, ::-1].argmax(axis=1), cols[:, ::-1].argmax(axis=1)], axis=1)
    pad = margin * (after - first).max(axis=1, keepdims=True)  # (N, 1)
    work.box = np.where(rows.any(axis=1, keepdims=True), np.concatenate([first - pad, after + pad], axis=1), work.box)


@register("measure", statistic=(str, "midtone_fraction", lambda v: v in ("midtone_fraction",), "midtone_fraction"))
def measure(work: Work, shape: tuple[int, int], statistic: str) -> None:
    """Record an input statistic of the region at full working resolution, for the unsure flag.

    Images much larger than the model input get a 3x3 median first: paper grain and JPEG speckle are not
    ink, and a median keeps stroke edges sharp where a blur would turn them grey."""
    luma = _luma(work.pixels)
    n, h, w = luma.shape
    if min(h, w) > 2 * max(shape):
        luma = _median3x3(luma)
    in_y, in_x = work.region()
    work.stats[statistic] = midtone_fraction(luma, in_y[:, :, None] & in_x[:, None, :])


@register("fit", terminal=True, size=(int, 20, lambda v: v >= 1, ">= 1 pixel"),
          center=(str, "mass", lambda v: v in ("mass", "box"), "mass | box"),
          fill=(float, 0.0, lambda v: 0.0 <= v <= 255.0, "0..255"))
def fit(work: Work, shape: tuple[int, int], size: int, center: str, fill: float) -> None:
    """Scale the region so its longer side is `size` pixels (aspect kept) and centre it on the output.

    center="mass" places the ink's centre of mass at the output centre, as MNIST was made; "box" centres
    the region itself (Fashion-MNIST)."""
    oh, ow = shape
    start = work.box[:, :2]
    scale = min(size, oh, ow) / _box_size(work).max(axis=1, keepdims=True)  # (N, 1): aspect kept
    centre = (start + work.box[:, 2:]) / 2  # (N, 2): y, x
    if center == "mass":
        centre = np.where(*_centre_of_mass(work), centre)
        target = np.array([oh // 2 + 0.5, ow // 2 + 0.5])  # the centre pixel, (14, 14) on 28x28 as in MNIST
    else:
        target = np.array([oh / 2, ow / 2])
    # Whole-pixel placement, as MNIST's own centring: a region that needs no scaling is copied exactly.
    offset = (target - (centre - start) * scale).round()
    _resample(work, shape, scale.repeat(2, axis=1), offset, fill)


def _centre_of_mass(work: Work) -> tuple[np.ndarray, np.ndarray]:
    """(N, 1) whether each region holds any ink, and (N, 2) the ink's centre of mass (y, x) within it."""
    luma = _luma(work.pixels).astype(np.float32, copy=False)
    n, h, w = luma.shape
    in_y, in_x = (m.astype(np.float32) for m in work.region())  # (N, H), (N, W)
    rows = np.matmul(luma, in_x[:, :, None])[..., 0] * in_y  # (N, H): ink per row inside the region
    cols = np.matmul(in_y[:, None, :], luma)[:, 0] * in_x  # (N, W)
    total = rows.sum(axis=1, dtype=np.float64, keepdims=True)
    inked = total > 0
    moments = np.empty((2, n), np.float32)
    np.matmul(rows, _centres(h, np.float32), out=moments[0])
    np.matmul(cols, _centres(w, np.float32), out=moments[1])
    return inked, moments.T / np.where(inked, total, 1.0)


@register("resize", terminal=True, mode=(str, "stretch", lambda v: v in ("stretch", "letterbox", "center_crop"),
                                         "stretch | letterbox | center_crop"),
          fill=(float, 0.0, lambda v: 0.0 <= v <= 255.0, "0..255"))
def resize(work: Work, shape: tuple[int, int], mode: str, fill: float) -> None:
    """Bring the region to the model's size: stretch it, fit it whole with borders (letterbox), or fill
    the output and crop the overflow evenly (center_crop: photos keep their proportions)."""
    oh, ow = shape
    if work.pixels.shape[1:3] == shape and work.whole():
        work.out = work.pixels.copy()  # already the model's size, whole frame: every mode maps it onto itself
        return
    size = _box_size(work)
    scale = np.array(shape, np.float64) / size  # (N, 2): stretch
    if mode != "stretch":  # one scale for both axes: the whole region fits (letterbox) or the output fills
        scale = np.repeat((scale.min if mode == "letterbox" else scale.max)(axis=1, keepdims=True), 2, axis=1)
    _resample(work, shape, scale, (np.array(shape) - size * scale) / 2, fill)


# ---------------------------------------------------------------------------------------------- pipeline

CHUNK = 4096  # images per vectorised pass


@dataclass(frozen=True)
class Pipeline:
    """An ordered, validated list of steps; picklable so decoding workers can run it."""

    steps: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = field(default=())

    @classmethod
    def parse(cls, steps: Sequence[Mapping[str, Any]] | str | None, source: str = "<model>") -> "Pipeline":
        """Validate a declared list (as stored in metadata); one clear error names the model and the step."""
        if steps is None:
            return cls()
        if isinstance(steps, str):
            try:
                steps = json.loads(steps)
            except json.JSONDecodeError:
                raise EdgeclsError(f"{source}: preprocessing is not valid JSON") from None
        if not isinstance(steps, (list, tuple)):
            raise EdgeclsError(f"{source}: preprocessing must be a list of steps, got {type(steps).__name__}")
        parsed = []
        resampled_at = None
        for i, raw in enumerate(steps):
            if not isinstance(raw, Mapping) or not isinstance(raw.get("op"), str):
                raise EdgeclsError(f"{source}: preprocessing step {i + 1} must be an object with an \"op\" name")
            name = raw["op"]
            spec = TRANSFORMS.get(name)
            if spec is None:
                raise EdgeclsError(f"{source}: unknown preprocessing step {name!r} (step {i + 1}); "
                                   f"known: {', '.join(sorted(TRANSFORMS))}")
            extra = sorted(set(raw) - set(spec.params) - {"op"})
            if extra:
                raise EdgeclsError(f"{source}: preprocessing step {name!r} has unknown parameter(s) {', '.join(extra)}; "
                                   f"it takes {', '.join(spec.params) or 'none'}")
            values = []
            for key, (kind, default, check, rule) in spec.params.items():
                value = raw.get(key, default)
                if kind is float and isinstance(value, int) and not isinstance(value, bool):
                    value = float(value)
                if not isinstance(value, kind) or isinstance(value, bool) or not check(value):
                    raise EdgeclsError(f"{source}: preprocessing step {name!r}: {key}={value!r} is invalid ({rule})")
                values.append((key, value))
            if resampled_at is not None and not spec.after:
                raise EdgeclsError(f"{source}: preprocessing step {name!r} cannot follow {resampled_at!r}, which "
                                   "already resampled to the model size")
            if spec.terminal:
                resampled_at = name
            parsed.append((name, tuple(values)))
        return cls(tuple(parsed))

    @property
    def declared(self) -> bool:
        return bool(self.steps)

    def to_list(self) -> list[Step]:
        return [{"op": name, **dict(params)} for name, params in self.steps]

    def __call__(self, pixels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """uint8 or float (N,H,W,C) same-sized images -> uint8 (N, shape[0], shape[1], C)."""
        return self.apply(pixels, shape)[0]

    def apply(self, pixels: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Model-ready uint8 pixels and the per-image statistics `measure` steps recorded.

        Runs in chunks of CHUNK images, so a whole data set costs bounded memory."""
        if len(pixels) > CHUNK:
            parts = [self.apply(pixels[i : i + CHUNK], shape) for i in range(0, len(pixels), CHUNK)]
            stats = {k: np.concatenate([p[1][k] for p in parts]) for k in parts[0][1]}
            return np.concatenate([p[0] for p in parts]), stats
        work = Work.of(pixels)
        for name, params in self.steps:
            TRANSFORMS[name].fn(work, shape, **dict(params))
        if work.out is None:
            resize(work, shape, mode="stretch", fill=0.0)
        out = work.out if work.out.base is None else work.out.copy()  # rounded in place, never a caller's array
        if out.dtype == np.uint8:  # copied through unchanged
            return out, work.stats
        np.rint(out, out=out)
        np.clip(out, 0, 255, out=out)
        return out.astype(np.uint8), work.stats

    def __str__(self) -> str:
        return " -> ".join(f"{n}({', '.join(f'{k}={v}' for k, v in p)})" for n, p in self.steps) or "stretch resize"


#: Named starting points for `edgecls export --preprocess NAME` and the zoo's own declarations.
PRESETS: dict[str, tuple[Step, ...]] = {
    # Handwritten digits and glyphs, MNIST-style: any polarity, any canvas, ink fitted into a 20x20 box
    # and centred by its centre of mass; paper grain (3x the border's noise) is dropped before the box is
    # found. Exact on MNIST's own digits: clean border, already fitted and centred.
    "digits": ({"op": "polarity", "background": "dark"}, {"op": "levels", "noise": 3.0},
               {"op": "crop_to_content", "threshold": 0.3}, {"op": "measure"},
               {"op": "fit", "size": 20, "center": "mass"}, {"op": "levels"}),
    # Objects on a plain background, Fashion-MNIST-style: dark background, object fills the frame, centred.
    "silhouette": ({"op": "polarity", "background": "dark"}, {"op": "levels"},
                   {"op": "crop_to_content", "threshold": 0.05}, {"op": "measure"},
                   {"op": "fit", "size": 28, "center": "box"}),
    # Photos (objects, faces): keep proportions, fill the input, crop the overflow evenly.
    "photo": ({"op": "resize", "mode": "center_crop"},),
    # What models exported before declared preprocessing get: stretch the whole image.
    "stretch": ({"op": "resize", "mode": "stretch"},),
}


def preset_or_steps(text: str, source: str = "--preprocess") -> Pipeline:
    """A preset name, or a JSON list of steps, as users type it on the command line."""
    if text in PRESETS:
        return Pipeline.parse(PRESETS[text], source)
    if text.lstrip().startswith("["):
        return Pipeline.parse(text, source)
    raise EdgeclsError(f"{source}: unknown preprocessing {text!r}; give a preset ({', '.join(PRESETS)}) or a JSON "
                       'list of steps such as \'[{"op": "resize", "mode": "letterbox"}]\'')
