"""Bring training data to what the model will see at run time: its declared preprocessing, plus
user-like renderings when the recipe asks for them. The same Pipeline runs in export and inference."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..data.types import Split
from ..runtime.preprocess import prepare_batch, working_pixels
from ..runtime.spec import InputSpec
from ..runtime.transforms import Pipeline
from ..zoo.registry import Realistic

CHUNK = 4096  # working images per pass (they may be larger than the model input)


def realistic_extras(recipe: Realistic, train: Split, spec: InputSpec, pipeline: Pipeline, seed: int,
                     on_log: Callable[[str], None] = print) -> Split:
    """Training digits re-drawn on user-like canvases and digits in augmentation fonts, preprocessed.

    Labels of font digits are the digits themselves, so this suits digit data sets only (the recipe says)."""
    from ..data.realistic import augment_fonts, font_digit_images, mnist_on_paper

    rng = np.random.default_rng(seed)
    images, labels = [], []
    if recipe.mnist_renderings:
        pick = rng.choice(len(train), size=min(recipe.mnist_renderings, len(train)), replace=False)
        images += mnist_on_paper(train.x[pick], seed)
        labels += train.y[pick].tolist()
    if recipe.font_renderings:
        fonts = augment_fonts()
        per_variant = -(-recipe.font_renderings // 6)
        for _, digit, image in font_digit_images(fonts, per_variant, seed + 1, outline_share=recipe.outline_share):
            images.append(image)
            labels.append(digit)
    on_log(f"realistic augmentation: {len(images)} user-like renderings")
    pixels = [working_pixels(im, spec) for im in images]
    x = np.concatenate([prepare_batch(pixels[i : i + CHUNK], spec, pipeline) for i in range(0, len(pixels), CHUNK)])
    return Split(x, np.asarray(labels, np.int64))
