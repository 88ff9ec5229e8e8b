"""The model registry: every trainable architecture, its data set and its training recipe, in one table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..errors import ModelNotFoundError
from ..runtime.spec import InputSpec

if TYPE_CHECKING:  # keras is only needed when a model is actually built
    import keras


@dataclass(frozen=True)
class Augment:
    """Random affine augmentation applied per image during training only."""

    rotation: float = 0.0  # max degrees either way
    zoom: float = 0.0  # max relative scale change either way
    shift: float = 0.0  # max translation, fraction of the image size (sub-pixel, bilinear: blurs)
    # max translation in whole pixels: exact pixel copies (nearest), as in the fast CIFAR-10 recipes
    # (pad-and-crop); used alone, without rotation/zoom/shift, so no resampling blur reaches training.
    shift_pixels: int = 0
    flip: bool = False  # random horizontal flip
    fill: str = "constant"  # constant (black) | reflect | nearest
    cutout: int = 0  # side in pixels of one random square set to mid-grey per image (0: off)

    def __post_init__(self) -> None:
        if self.shift_pixels and (self.rotation or self.zoom or self.shift):
            raise ValueError("shift_pixels is an exact whole-pixel shift: do not combine it with rotation, zoom "
                             "or shift")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    batch_size: int
    optimizer: str = "adam"  # adam | adamw | sgd
    learning_rate: float = 1e-3
    schedule: str = "constant"  # constant | cosine (linear warm-up, then cosine decay to zero)
    warmup_epochs: float = 0.0
    weight_decay: float = 0.0
    momentum: float = 0.9  # SGD only
    nesterov: bool = False
    label_smoothing: float = 0.0
    val_fraction: float = 0.1  # held out of train for model selection; ignored when use_official_val
    use_official_val: bool = False  # e.g. FER-2013 PublicTest
    early_stopping_patience: Optional[int] = None
    augment: Optional[Augment] = None
    # Compute in bfloat16 (CPU with native bf16) or float16 (GPU); weights stay float32 and the
    # shipped model is rebuilt in float32, so exports never see reduced precision.
    mixed_precision: bool = False


@dataclass(frozen=True)
class Realistic:
    """Extra training images drawn the ways users draw (ink on paper, big canvases, RGB, JPEG, noise),
    run through the model's own declared preprocessing (toolkit/data/realistic.py)."""

    mnist_renderings: int = 0  # training digits re-drawn on user-like canvases
    font_renderings: int = 0  # digits in augmentation fonts (never the test fonts)
    outline_share: float = 0.0  # share of the font digits drawn hollow (outline fonts, double-line pens)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    dataset: str
    role: str  # "baseline" (reproduced from a source study), "edge" (shipped) or "custom" (a user's --data run)
    summary: str
    build: Callable[[InputSpec, int], "keras.Model"] = field(repr=False)
    train: TrainConfig
    source_claim: str = ""  # what the source study reports, for baselines
    # Declared preprocessing (edgecls.runtime.transforms): the same steps in training, export and inference.
    preprocess: tuple[dict[str, Any], ...] = ()
    unsure_statistic: Optional[str] = None  # input statistic for the unsure flag (edgecls.runtime.unsure)
    realistic: Optional[Realistic] = None


MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in MODELS:
        raise ValueError(f"model {spec.name!r} registered twice")
    if spec.role not in ("baseline", "edge"):
        raise ValueError(f"role must be baseline or edge, got {spec.role!r}")
    MODELS[spec.name] = spec
    return spec


def get_model_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, list(MODELS), n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise ModelNotFoundError(f"unknown model {name!r}; {hint}known: {', '.join(MODELS)} (or give your own images "
                                 f"with --data folder/)") from None
