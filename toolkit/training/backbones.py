"""Which of the zoo's trained models to start a small data set from, and how to load its features.

The zoo's edge models were trained on their data sets to real accuracy; their convolutional layers are
good features for images that look alike. A user's folder is matched to one by what its images are:
colour photos -> cifar10; grey photos or faces -> emotion; glyphs on a plain background -> mnist (thin
strokes) or fashion (filled silhouettes).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from ..errors import EdgeclsError, ModelNotFoundError
from ..runtime.errors import ImageError
from ..runtime.files import IMAGE_SUFFIXES
from ..runtime.store import ModelFolder, search_dirs

if TYPE_CHECKING:
    from ..card import ModelCard
from ..runtime.preprocess import load_pixels, open_image
from ..runtime.spec import InputSpec

# The backbones `--from` is tested with; any zoo model with a trained model.keras is accepted.
BACKBONES = ("cifar10", "emotion", "mnist", "fashion")
LOOK_SAMPLE = 64  # images inspected to choose a backbone
COLOUR_TOLERANCE = 3.0  # mean |R-G|, |G-B| in grey levels below which an RGB file is grey (JPEG noise)
PLAIN_BACKGROUND = 0.5  # share of near-black/near-white pixels above which an image is a glyph, not a photo
STROKE_INK = 0.2  # share of ink pixels below which glyphs are strokes (digits) rather than silhouettes


@dataclass(frozen=True)
class Look:
    """What a folder's images are, measured on a sample."""

    channels: int  # 3 when any sampled image has colour
    median_size: tuple[int, int]  # height, width of the sampled files
    plain_background: float  # median share of near-black/near-white pixels (after putting ink light)
    ink: float  # median share of bright pixels (after putting ink light)
    sampled: int

    def to_dict(self) -> dict[str, Any]:
        return {"channels": self.channels, "median_size": list(self.median_size),
                "plain_background": round(self.plain_background, 3), "ink": round(self.ink, 3),
                "sampled": self.sampled}


@dataclass(frozen=True)
class Choice:
    name: str
    reason: str


def sample_files(root: Path, count: int = LOOK_SAMPLE, seed: int = 1337) -> list[Path]:
    """A seeded sample of image files under root (train/ when the folder is already split)."""
    base = root / "train" if (root / "train").is_dir() and (root / "test").is_dir() else root
    files = sorted(p for p in base.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    random.Random(seed).shuffle(files)
    return files[:count]


def look_at(root: Path, seed: int = 1337) -> Look:
    """Colour, size and kind of the images in `root`, decoded by the runtime as training will decode them."""
    colour, sizes, plain, ink = [], [], [], []
    for file in sample_files(root, seed=seed):
        try:
            image = open_image(file)
            sizes.append((image.height, image.width))
            rgb = load_pixels(image, InputSpec(48, 48, 3)).astype(np.float32)
            grey = load_pixels(image, InputSpec(48, 48, 1))[..., 0].astype(np.float32)
        except ImageError:
            continue  # the data loader lists unreadable files; here they just do not vote
        colour.append(max(np.abs(rgb[..., 0] - rgb[..., 1]).mean(), np.abs(rgb[..., 1] - rgb[..., 2]).mean()))
        border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
        if np.median(border) > 127:  # dark ink on light paper: look at it as light ink on dark
            grey = 255.0 - grey
        plain.append(float(((grey < 38) | (grey > 217)).mean()))
        ink.append(float((grey > 127).mean()))
    if not sizes:
        raise EdgeclsError(f"{root}: no readable images to choose a backbone from")
    h, w = (int(v) for v in np.median(np.array(sizes), axis=0))
    channels = 3 if max(colour) > COLOUR_TOLERANCE else 1
    return Look(channels, (h, w), float(np.median(plain)), float(np.median(ink)), len(sizes))


def choose_backbone(look: Look) -> Choice:
    """The zoo model whose training images look most like these."""
    h, w = look.median_size
    if look.channels == 3:
        return Choice("cifar10", f"colour images ({h}x{w}): CIFAR-10 photo features")
    if look.plain_background < PLAIN_BACKGROUND:
        return Choice("emotion", f"grey photos ({h}x{w}, {look.plain_background:.0%} plain background): "
                                 "FER-2013 face/photo features")
    if look.ink < STROKE_INK:
        return Choice("mnist", f"grey strokes on a plain background ({look.ink:.0%} ink): MNIST glyph features")
    return Choice("fashion", f"grey shapes on a plain background ({look.ink:.0%} ink): Fashion-MNIST features")


def find_backbone(name: str, workspace: Optional[Path] = None) -> tuple[Path, "ModelCard"]:
    """The backbone's model.keras and its card (a zoo model retrained in the workspace first, then the shipped
    one), or a one-line error saying what exists."""
    from ..card import read_card
    from ..zoo import MODELS

    if name not in MODELS:
        known = ", ".join(BACKBONES)
        raise ModelNotFoundError(f"--from {name!r}: not a zoo model; backbones: {known} "
                                 f"(or any of {', '.join(m for m in MODELS if m not in BACKBONES)})")
    for root in search_dirs(workspace):
        folder = ModelFolder(name, root / name)
        if folder.trained():
            return folder.keras_path, read_card(folder.card_path)
    looked = ", ".join(str(d / name / "model.keras") for d in search_dirs(workspace))
    raise ModelNotFoundError(f"--from {name!r}: no trained model (looked for {looked}); "
                             f"train it with `edgecls train {name}` or use --scratch")


def load_backbone_weights(model: Any, keras_path: Path) -> list[str]:
    """Copy a zoo model's trained weights into `model` (the same architecture, a new head), layer by layer.

    The file is loaded with Keras safe_mode on. Layers are matched by position and type, so models whose
    layer names were generated (baselines) match too; only the final classifier is left as built.
    Returns the names of the layers that received weights."""
    from ..keras_files import load_keras_model

    source = load_keras_model(keras_path)
    ours, theirs = model.layers, source.layers
    if len(ours) != len(theirs):
        raise EdgeclsError(f"{keras_path}: {len(theirs)} layers, but its architecture builds {len(ours)}; "
                           "the file does not match its zoo entry")
    loaded = []
    head = head_layer(model)
    for mine, other in zip(ours, theirs):
        if mine is head or not mine.weights:
            continue
        if type(mine) is not type(other):
            raise EdgeclsError(f"{keras_path}: layer {other.name} is a {type(other).__name__}, expected "
                               f"{type(mine).__name__}; the file does not match its zoo entry")
        mine.set_weights(other.get_weights())
        loaded.append(mine.name)
    return loaded


def head_layer(model: Any) -> Any:
    """The final classifier: the last layer with weights (a Dense in every zoo model)."""
    return [layer for layer in model.layers if layer.weights][-1]
