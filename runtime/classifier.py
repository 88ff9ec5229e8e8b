"""Classifier: the embeddable API. Which file runs (runtime/variant_policy.py), how it runs (runtime/engine.py),
and what the model declares about itself (labels, preprocessing, unsure rule) are decided once, when it loads."""

from __future__ import annotations

import os
import warnings
from typing import Iterable, Optional, Sequence, Union

import numpy as np

from .engine import Engine, EnginePlan
from .errors import EdgeclsError
from .heads import DEFAULT_THRESHOLD, to_scores
from .predictions import Decoder, Prediction
from .preprocess import ImageSource, load_pixels, prepare_with_stats, working_pixels
from .transforms import Pipeline
from .tuning import Tuner, as_tuner
from .unsure import UnsureRule
from .variant_policy import VariantChoice, choose_variant

__all__ = ["Classifier", "Prediction"]


class Classifier:
    """An exported edgecls model ready to run.

    >>> clf = Classifier("mnist")            # variant="auto": the fastest validated variant here (clf.choice)
    >>> Classifier("mnist", variant="int8"); Classifier("path/to/model.onnx"); Classifier(..., tune="off")
    >>> Classifier(choose_variant("mnist"))  # a choice made once elsewhere (a server, a Ray driver)
    >>> clf.predict(["a.png", pil_image, numpy_array])[0].label
    >>> clf.engine                           # what runs the calls: threads, batch-1 cores, sub-batch size
    """

    def __init__(self, model: Union[str, os.PathLike, VariantChoice], *, variant: str = "auto", device: str = "auto",
                 threads: Optional[int] = None, workspace: Optional[Union[str, os.PathLike]] = None,
                 spin: bool = True, tune: Union[str, Tuner] = "auto") -> None:
        tuner = as_tuner(tune)
        self.choice: VariantChoice = model if isinstance(model, VariantChoice) else \
            choose_variant(model, variant, device=device, workspace=workspace, tune=tuner)  # already chosen, or now
        self.path = self.choice.path
        self._engine = Engine.load(self.path, device, threads, spin, tuner)
        self.info = self._engine.info
        self.spec, self.labels, self.output = self.info.input_spec, self.info.labels, self.info.output
        self.pipeline = Pipeline.parse(self.info.preprocess or None, str(self.path))
        self.unsure_rule = UnsureRule.parse(self.info.unsure, str(self.path))
        self._decode = Decoder(self.labels, self.output, self.unsure_rule)
        if self.choice.warning and self.choice.requested != "auto" and not isinstance(model, VariantChoice):
            warnings.warn(f"{self.path.name}: {self.choice.warning}", RuntimeWarning, stacklevel=2)

    @property
    def engine(self) -> EnginePlan:
        """What runs this model's calls, fixed at load: runner, threads, batch-1 cores, sub-batch size, and
        whether each was measured, cached or a default."""
        return self._engine.plan

    @property
    def provider(self) -> str:
        """The onnxruntime execution provider actually running the model."""
        return self._engine.plan.provider

    def load(self, source: ImageSource) -> np.ndarray:
        """One source -> model-ready uint8 HxWxC pixels through the declared preprocessing (ImageError names it)."""
        return load_pixels(source, self.spec, self.pipeline)

    def load_many(self, sources: Sequence[ImageSource]) -> np.ndarray:
        """Many sources -> model-ready uint8 (N,H,W,C); equal-sized images are preprocessed as one batch."""
        return self.prepare(sources)[0]

    def prepare(self, sources: Sequence[ImageSource]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Model-ready pixels and what the preprocessing measured on the originals (for the unsure flag)."""
        if not self.pipeline.declared:
            return np.stack([load_pixels(s, self.spec) for s in sources]), {}
        return prepare_with_stats([working_pixels(s, self.spec) for s in sources], self.spec, self.pipeline)

    def run(self, pixels: np.ndarray) -> np.ndarray:
        """Scores per label for a batch of pixels (N,H,W,C) or (N,H,W) grey, uint8 or float, or a batch already
        in the model's layout: probabilities, per-label sigmoids (multi-label) or two columns (binary)."""
        batch = np.asarray(pixels)
        if batch.ndim == 3 and self.spec.channels == 1:
            batch = batch[..., None]  # (N,H,W) grey
        raw = self._engine.run(batch) if batch.ndim == 4 else None
        if raw is None:
            raise EdgeclsError(f"expected images of {self.spec.height}x{self.spec.width}x{self.spec.channels} "
                               f"(N,H,W,C), got shape {batch.shape}")
        if raw.shape[-1] != self._engine.width:  # a dynamic width, checked once known
            raise EdgeclsError(f"{self.path}: invalid model: output has {raw.shape[-1]} columns but metadata "
                               f"edgecls.labels has {len(self.labels)} class names")
        return to_scores(raw, self.output)

    def predict(self, sources: Union[ImageSource, Sequence[ImageSource]], top_k: int = 1) -> list[Prediction]:
        """Paths, bytes, PIL images or arrays -> one Prediction each (a single source gives a list of one)."""
        if type(sources) is not list and (isinstance(sources, (str, os.PathLike, bytes, bytearray)) or not isinstance(
                sources, Iterable) or (isinstance(sources, np.ndarray) and sources.ndim <= 3)):
            sources = [sources]  # type: ignore[list-item]
        sources = list(sources)  # type: ignore[arg-type]
        if not sources:
            return []
        pixels, stats = self.prepare(sources)
        return self._decode(self.run(pixels), top_k, pixels, stats)

    def decode(self, probabilities: np.ndarray, top_k: int = 1, pixels: Optional[np.ndarray] = None,
               stats: Optional[dict[str, np.ndarray]] = None, threshold: float = DEFAULT_THRESHOLD) -> list[Prediction]:
        """(N, labels) scores from `run` -> Predictions; give the model-ready `pixels` (and `stats` from
        `prepare`) they came from, so the unsure flag can use its input check."""
        return self._decode(probabilities, top_k, pixels, stats, threshold)

    @property
    def speed_note(self) -> str:
        """Which variant runs and why, and this machine's int8 vs fp32 verdict when it matters (see `choice`)."""
        return "; ".join(filter(None, (self.choice.summary, self.choice.warning)))

    def __repr__(self) -> str:
        return (f"Classifier({str(self.path)!r}, variant={self.info.variant}, labels={len(self.labels)}, "
                f"input={self.spec.height}x{self.spec.width}x{self.spec.channels}, provider={self.provider})")
