"""Classifier: the embeddable API. Labels and preprocessing come from the model's own metadata."""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np

from .errors import EdgeclsError
from .heads import BINARY, DEFAULT_THRESHOLD, MULTILABEL, output_width, to_scores
from .inference import ShardedRunner, SingleImageRunner, cpu_threads
from .metadata import ModelInfo
from .model_check import check_session
from .store import find_onnx, looks_like_path
from .preprocess import ImageSource, layout_view, load_pixels, prepare_with_stats, to_batch, working_pixels
from .session import create_session, session_provider
from .transforms import Pipeline
from .unsure import UnsureRule
from .variant_choice import VariantChoice, cached_int8_note, choose_variant


@dataclass(slots=True)
class Prediction:
    label: str
    index: int
    score: float  # probability of the top class
    top_k: tuple[tuple[str, float], ...]  # best first
    probabilities: np.ndarray  # score per label (multi-label heads: independent sigmoids)
    unsure: bool = False  # out of the model's distribution or too ambiguous to trust (calibrated at export)
    labels: tuple[str, ...] = ()  # every label that applies: multi-label heads, those over the threshold;
    # otherwise the one predicted label


def _as_float32(batch: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(batch, dtype=np.float32)


def _same(batch: np.ndarray) -> np.ndarray:
    return batch


class Classifier:
    """An exported edgecls model ready to run.

    >>> clf = Classifier("artifacts/mnist/mnist.int8.onnx")       # or Classifier("mnist", variant="int8")
    >>> Classifier("mnist")          # variant="auto": the fastest validated variant on this machine (clf.speed_note)
    >>> clf.predict(["a.png", pil_image, numpy_array])[0].label
    """

    def __init__(
        self,
        model: Union[str, os.PathLike],
        *,
        variant: str = "auto",
        device: str = "auto",
        threads: Optional[int] = None,
        workspace: Optional[Union[str, os.PathLike]] = None,
        spin: bool = True,
        artifacts: Optional[Union[str, os.PathLike]] = None,
    ) -> None:
        if artifacts is not None:  # the older name of `workspace`
            warnings.warn("Classifier(artifacts=...) is now Classifier(workspace=...)", DeprecationWarning, stacklevel=2)
            workspace = workspace or artifacts
        # auto (the default): for a model name, the fastest variant that passed its gate here, measured once per
        # machine and cached (runtime/variant_choice.py); a path is loaded as given.
        self.variant_choice: Optional[VariantChoice] = None
        if variant == "auto" and not (looks_like_path(model) or Path(model).is_file()):
            self.variant_choice = choose_variant(str(model), device, threads, workspace, spin)
            self.path: Path = self.variant_choice.path
        else:
            self.path = find_onnx(model, "fp32" if variant == "auto" else variant, workspace)
        self._session = create_session(self.path, device, threads, spin)
        self.info = ModelInfo.from_metadata(self._session.get_modelmeta().custom_metadata_map, str(self.path))
        self.output = self.info.output  # what the graph's output means (runtime/heads.py)
        check_session(self._session, self.info.labels, self.info.input_spec, str(self.path),
                      output_width(self.output, len(self.info.labels)))
        if self.output in BINARY and len(self.info.labels) != 2:
            raise EdgeclsError(f"{self.path}: a binary head needs exactly two labels, metadata has {len(self.info.labels)}")
        self.spec = self.info.input_spec
        self.labels = self.info.labels
        self._hwc = (self.spec.height, self.spec.width, self.spec.channels)  # what `run` takes as pixels
        self._width = output_width(self.output, len(self.labels))
        self.pipeline = Pipeline.parse(self.info.preprocess or None, str(self.path))
        self.unsure_rule = UnsureRule.parse(self.info.unsure, str(self.path))
        self._input = self._session.get_inputs()[0].name
        self._output = self._session.get_outputs()[0].name
        # batch 1 on the CPU: preallocated IOBinding buffers (runtime/inference.py), measured ~2 us less per call
        self._single = SingleImageRunner(self._session, self._input, self._output, self.spec.shape, self._width) \
            if self.provider == "CPUExecutionProvider" else None
        # big CPU batches: one shard per core, each on a one-thread session (runtime/inference.py), measured
        # faster than onnxruntime's own intra-op threads at batch 256 (README "Speed"); check_session has made
        # sure the batch axis is dynamic
        self._sharded = ShardedRunner.for_model(self.path, self.provider, threads, spin)
        # batch 1 on one core instead of all when measured faster for this model here (runtime/batch1_threads.py):
        # decided on the first batch-1 call, cached per machine
        self._threads, self._spin = cpu_threads(threads), spin
        self._batch1_lock = threading.Lock()
        self._batch1: Optional[SingleImageRunner] = None if self._sharded is not None else self._single
        self._one_core: Optional[SingleImageRunner] = None
        # said when a cached measurement shows int8 is not faster than fp32 here (auto never picks it then)
        self.speed_note: Optional[str] = self.variant_choice.note if self.variant_choice else \
            cached_int8_note(self.path, threads, spin)
        if self.speed_note and self.variant_choice is None:
            warnings.warn(self.speed_note, RuntimeWarning, stacklevel=2)

    @property
    def provider(self) -> str:
        """The onnxruntime execution provider actually running the model."""
        return session_provider(self._session)

    def load(self, source: ImageSource) -> np.ndarray:
        """One source -> model-ready uint8 HxWxC pixels through the model's declared preprocessing
        (raises ImageError naming the source)."""
        return load_pixels(source, self.spec, self.pipeline)

    def load_many(self, sources: Sequence[ImageSource]) -> np.ndarray:
        """Many sources -> model-ready uint8 (N,H,W,C); equal-sized images are preprocessed as one batch."""
        return self.prepare(sources)[0]

    def prepare(self, sources: Sequence[ImageSource]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Model-ready pixels and what the preprocessing measured on the originals (for `decode`'s unsure
        flag); raises ImageError naming the first source that cannot be read."""
        if not self.pipeline.declared:
            return np.stack([load_pixels(s, self.spec) for s in sources]), {}
        return prepare_with_stats([working_pixels(s, self.spec) for s in sources], self.spec, self.pipeline)

    def run(self, pixels: np.ndarray) -> np.ndarray:
        """Scores per label for a batch of pixels, uint8 or float (N,H,W,C), or already in the model's layout:
        probabilities for softmax/logit heads, per-label sigmoids for multi-label heads, two columns for binary."""
        batch = np.asarray(pixels)
        if batch.ndim == 3 and self.spec.channels == 1 and batch.shape[1:] == (self.spec.height, self.spec.width):
            batch = batch[..., None]  # (N,H,W) grey
        if batch.ndim != 4:
            raise EdgeclsError(f"expected a batch (N,H,W,C) of images, got shape {batch.shape}")
        if batch.shape[1:] == self._hwc:
            prepare, view = self._pixels_to_input, self._pixels_view  # pixels -> the model's float32 layout
        elif batch.shape[1:] == self.spec.shape:
            prepare, view = _as_float32, _same  # already in the model's layout
        else:
            raise EdgeclsError(f"expected images of {self.spec.height}x{self.spec.width}x{self.spec.channels}, "
                               f"got {batch.shape[1:]}")
        if self._sharded is not None and self._sharded.takes(len(batch)):
            raw = self._sharded.run(batch, prepare)
        elif len(batch) == 1 and self._single is not None:
            raw = self._run_one(view(batch))
        else:
            raw = self._session.run([self._output], {self._input: prepare(batch)})[0]
        if raw.shape[-1] != self._width:  # a dynamic width, checked once known
            raise EdgeclsError(f"{self.path}: invalid model: output has {raw.shape[-1]} columns but "
                               f"metadata edgecls.labels has {len(self.labels)} class names")
        return to_scores(raw, self.output)

    def _run_one(self, one: np.ndarray) -> np.ndarray:
        """One image, any dtype, seen in the model's layout: copied (and converted) straight into the bound input
        buffer, one pass instead of a float32 copy and then another (measured ~2 us of mnist's ~20 us call)."""
        try:
            return (self._batch1 or self._choose_batch1(one)).run(one)
        except Exception:  # noqa: BLE001 - e.g. an output width other than declared: the plain call says why
            self._single = self._batch1 = None
        return self._session.run([self._output], {self._input: _as_float32(one)})[0]

    def _choose_batch1(self, one: np.ndarray) -> SingleImageRunner:
        """The batch-1 runner, all cores or one (the shards' one-thread session), timed on this first image."""
        from . import batch1_threads

        with self._batch1_lock:
            if self._batch1 is None:
                choice = batch1_threads.choose(self.path, self._threads, self._spin, self._single.run,
                                               lambda: self._one_core_runner().run, one)
                self._batch1 = self._single if choice == "all" else self._one_core_runner()
            return self._batch1

    def _one_core_runner(self) -> SingleImageRunner:
        """Batch-1 calls on the shards' one-thread session (built only when timed or chosen: it holds a second
        copy of the weights)."""
        if self._one_core is None:
            self._one_core = SingleImageRunner(self._sharded.session(), self._input, self._output, self.spec.shape,
                                               self._width)
        return self._one_core

    def _pixels_to_input(self, pixels: np.ndarray) -> np.ndarray:
        return to_batch(pixels, self.spec)

    def _pixels_view(self, pixels: np.ndarray) -> np.ndarray:
        return layout_view(pixels, self.spec)

    def predict(self, sources: Union[ImageSource, Sequence[ImageSource]], top_k: int = 1) -> list[Prediction]:
        """Paths, bytes, PIL images or arrays -> one Prediction each (a single source gives a list of one)."""
        if isinstance(sources, (str, os.PathLike, bytes, bytearray)) or not isinstance(sources, Iterable) or (
                isinstance(sources, np.ndarray) and sources.ndim <= 3):
            sources = [sources]  # type: ignore[list-item]
        sources = list(sources)  # type: ignore[arg-type]
        if not sources:
            return []
        pixels, stats = self.prepare(sources)
        return self.decode(self.run(pixels), top_k, pixels=pixels, stats=stats)

    def decode(self, probabilities: np.ndarray, top_k: int = 1, pixels: Optional[np.ndarray] = None,
               stats: Optional[dict[str, np.ndarray]] = None, threshold: float = DEFAULT_THRESHOLD) -> list[Prediction]:
        """Turn an (N, labels) score array (from `run`) into Predictions. Give the model-ready `pixels` (and the
        `stats` from `prepare`) the scores came from, so the unsure flag can use its input check.
        Multi-label heads: `Prediction.labels` holds every label scoring at least `threshold`."""
        labels = self.labels
        k = max(1, min(top_k, len(labels)))
        rule = self.unsure_rule
        unsure = rule.flags(probabilities, pixels, stats).tolist() if rule else [False] * len(probabilities)
        multi = self.output in MULTILABEL
        if k == 1 and not multi:  # the common case, vectorised: this runs once per image in folder inference
            best = probabilities.argmax(axis=1)
            scores = probabilities[np.arange(len(best)), best].tolist()
            return [Prediction(labels[i], i, s, ((labels[i], s),), row, u, (labels[i],))
                    for i, s, row, u in zip(best.tolist(), scores, probabilities, unsure)]
        order = np.argsort(-probabilities, axis=1)[:, :k]
        out = []
        for row, best, u in zip(probabilities, order.tolist(), unsure):
            top = tuple((labels[i], float(row[i])) for i in best)
            active = tuple(labels[i] for i in np.flatnonzero(row >= threshold)) if multi else (top[0][0],)
            out.append(Prediction(top[0][0], best[0], top[0][1], top, row, u, active))
        return out

    def __repr__(self) -> str:
        return (f"Classifier({str(self.path)!r}, variant={self.info.variant}, labels={len(self.labels)}, "
                f"input={self.spec.height}x{self.spec.width}x{self.spec.channels}, provider={self.provider})")
