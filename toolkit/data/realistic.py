"""Digits the way users photograph, scan and draw them: ink on paper, big canvases, RGB, JPEG, noise.

Two uses, kept apart by font: training augmentation renders MNIST digits and AUGMENT_FONTS onto
user-like canvases; the realistic test sets render TEST_FONTS (handwriting fonts from Debian packages,
never seen in training) the same ways. Fonts come from the system (fc-list); missing ones are skipped.
"""

from __future__ import annotations

import io
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

# Handwriting fonts for evaluation only (Debian: fonts-dkg-handwriting fonts-breip fonts-femkeklaver
# fonts-humor-sans fonts-ecolier-court fonts-bwht).
TEST_FONTS = ("dkg.ttf", "dkgBd.ttf", "dkgIt.ttf", "dkgBI.ttf", "Breip.ttf", "breipfont.ttf", "femkeklaver.ttf",
              "Humor-Sans.ttf", "Ecolier-court.ttf", "BecauseWeBuild-Regular.otf",
              "BecauseWeConnect-Regular.otf", "BecauseWeCreate-Regular.otf")
# Everything else installed may be used for augmentation, except the test fonts.
AUGMENT_FONT_PACKAGES = ("fonts-dejavu-core fonts-liberation fonts-freefont-ttf fonts-comic-neue "
                         "fonts-dancingscript fonts-kaushanscript fonts-bwht")
TEST_FONT_PACKAGES = ("fonts-dkg-handwriting fonts-breip fonts-femkeklaver fonts-humor-sans "
                      "fonts-ecolier-court fonts-bwht")


@lru_cache(maxsize=1)
def installed_fonts() -> tuple[Path, ...]:
    try:
        out = subprocess.run(["fc-list", ":", "file"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    files = {Path(line.split(":")[0].strip()) for line in out.splitlines() if line.strip()}
    return tuple(sorted(p for p in files if p.suffix.lower() in (".ttf", ".otf") and p.is_file()))


def test_fonts() -> tuple[Path, ...]:
    return tuple(p for p in installed_fonts() if p.name in TEST_FONTS)


def augment_fonts() -> tuple[Path, ...]:
    """Fonts that draw all ten digits distinctly, minus the test fonts (never train on what we test on)."""
    keep = []
    for p in installed_fonts():
        if p.name in TEST_FONTS or any(w in p.name.lower() for w in ("symbol", "emoji", "math", "icon")):
            continue
        keep.append(p)
    return tuple(keep)


@dataclass(frozen=True)
class Variant:
    """One way a user's picture differs from MNIST."""

    name: str
    canvas: tuple[int, int] = (96, 200)  # side range in pixels
    dark_ink: bool = True  # ink darker than the paper (the usual case)
    rgb: bool = False
    paper_noise: float = 0.0  # std of the paper's grain, grey levels
    paper_grey: tuple[int, int] = (225, 255)
    jpeg: Optional[int] = None  # quality
    rotation: float = 8.0  # degrees either way
    fill: tuple[float, float] = (0.35, 0.75)  # glyph height as a fraction of the canvas


VARIANTS = (
    Variant("ink-on-paper-png"),
    Variant("ink-on-paper-jpeg", jpeg=70),
    Variant("big-canvas-small-digit", canvas=(200, 320), fill=(0.15, 0.35)),
    Variant("rgb-pen-photo", rgb=True, jpeg=85, paper_grey=(170, 235), paper_noise=6.0),
    Variant("grey-noisy-paper", paper_grey=(120, 190), paper_noise=18.0),
    Variant("white-on-black", dark_ink=False, paper_grey=(0, 40)),
)


def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size)


def glyph(digit: int, font: Path, height: int, rng: np.random.Generator, stroke: int = 0,
          outline: bool = False) -> Image.Image:
    """The digit as white ink on black ('L'), tightly cropped, about `height` pixels tall.

    outline: only the contour, `stroke` pixels wide, of the (widened) glyph: hollow letters, as outline and
    decorative handwriting fonts draw them."""
    fnt = _font(font, height)
    text = str(digit)
    left, top, right, bottom = fnt.getbbox(text, stroke_width=stroke)
    img = Image.new("L", (right - left + 4, bottom - top + 4), 0)
    draw = ImageDraw.Draw(img)
    draw.text((2 - left, 2 - top), text, fill=255, font=fnt, stroke_width=stroke, stroke_fill=255)
    if outline:
        draw.text((2 - left, 2 - top), text, fill=0, font=fnt)
    return img


def compose(ink: Image.Image, variant: Variant, rng: np.random.Generator) -> Image.Image:
    """Put a white-on-black ink mask (any size) on a user-like canvas according to `variant`."""
    side = int(rng.integers(variant.canvas[0], variant.canvas[1] + 1))
    aspect = rng.uniform(0.8, 1.25)
    w, h = side, max(16, int(side * aspect))
    target_h = rng.uniform(*variant.fill) * h
    scale = target_h / max(ink.size[1], 1)
    mask = ink.resize((max(1, int(ink.size[0] * scale)), max(1, int(ink.size[1] * scale))), Image.Resampling.BICUBIC)
    if variant.rotation:
        mask = mask.rotate(rng.uniform(-variant.rotation, variant.rotation), Image.Resampling.BICUBIC, expand=True)
    if mask.size[0] > w * 0.95 or mask.size[1] > h * 0.95:
        shrink = 0.95 * min(w / mask.size[0], h / mask.size[1])
        mask = mask.resize((max(1, int(mask.size[0] * shrink)), max(1, int(mask.size[1] * shrink))),
                           Image.Resampling.BICUBIC)
    x = int(rng.integers(0, max(1, w - mask.size[0])))
    y = int(rng.integers(0, max(1, h - mask.size[1])))
    alpha = np.zeros((h, w), np.float32)
    alpha[y : y + mask.size[1], x : x + mask.size[0]] = np.asarray(mask, np.float32)[: h - y, : w - x] / 255.0
    paper = rng.uniform(*variant.paper_grey)
    ink_level = rng.uniform(0, 70) if variant.dark_ink else rng.uniform(200, 255)
    if variant.rgb:
        paper_c = np.clip(paper + rng.normal(0, 12, 3), 0, 255)
        ink_c = np.clip(np.array([ink_level] * 3) + rng.normal(0, 25, 3) + rng.choice([0, 60], 3), 0, 255)
        base = paper_c[None, None, :] * (1 - alpha[..., None]) + ink_c[None, None, :] * alpha[..., None]
        # uneven light across a photographed page
        ramp = np.linspace(rng.uniform(-20, 0), rng.uniform(0, 20), w)[None, :, None]
        base = base + ramp
    else:
        base = paper * (1 - alpha) + ink_level * alpha
    if variant.paper_noise:
        base = base + rng.normal(0, variant.paper_noise, base.shape)
    image = Image.fromarray(np.clip(np.rint(base), 0, 255).astype(np.uint8))
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    if variant.jpeg:
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=variant.jpeg)
        image = Image.open(io.BytesIO(buf.getvalue()))
        image.load()
    return image


def font_digit_images(fonts: Sequence[Path], per_variant: int, seed: int, variants: Sequence[Variant] = VARIANTS,
                      outline_share: float = 0.0) -> Iterator[tuple[str, int, Image.Image]]:
    """(variant name, digit, image) for `per_variant` images of each variant, digits and fonts cycled.

    outline_share: this share of the glyphs drawn hollow (training augmentation; the test sets keep 0, and
    then draw exactly the images they always drew)."""
    if not fonts:
        raise FileNotFoundError("no fonts for realistic digits; install: apt-get install " + TEST_FONT_PACKAGES)
    rng = np.random.default_rng(seed)
    for variant in variants:
        for i in range(per_variant):
            digit = i % 10
            font = fonts[(i // 10) % len(fonts)]
            if outline_share and rng.random() < outline_share:
                ink = glyph(digit, font, 96, rng, int(rng.integers(2, 5)), outline=True)
            else:
                ink = glyph(digit, font, 96, rng, int(rng.integers(0, 3)))
            yield variant.name, digit, compose(ink, variant, rng)


def mnist_on_paper(digits: np.ndarray, seed: int, variants: Sequence[Variant] = VARIANTS) -> list[Image.Image]:
    """Training augmentation: MNIST digits (uint8 (N,28,28,1), white on black) drawn the ways users draw.

    Stroke width varies (dilate or erode the upscaled ink) because pens differ from MNIST's."""
    rng = np.random.default_rng(seed)
    out = []
    for i, digit in enumerate(digits):
        ink = Image.fromarray(digit[..., 0]).resize((84, 84), Image.Resampling.BICUBIC)
        width = rng.integers(-1, 3)
        if width > 0:
            ink = ink.filter(ImageFilter.MaxFilter(2 * int(width) + 1))
        elif width < 0:
            ink = ink.filter(ImageFilter.MinFilter(3))
        out.append(compose(ink, variants[i % len(variants)], rng))
    return out
