"""The models a server holds: each with its Classifier (one onnxruntime session) and its batcher."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from ..runtime.classifier import Classifier
from ..runtime.errors import EdgeclsError
from .batcher import MicroBatcher
from .config import ServeConfig
from .metrics import ServeMetrics
from .scores import Scores

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass
class ServedModel:
    name: str
    classifier: Classifier
    batcher: Optional[MicroBatcher] = field(default=None, repr=False)

    def attach(self, config: ServeConfig, metrics: ServeMetrics) -> MicroBatcher:
        """Create this model's batcher for a server; it starts with the app."""
        self.batcher = MicroBatcher(self.name, self.score, max_batch_size=config.max_batch_size,
                                    max_wait_ms=config.max_wait_ms, max_queue=config.max_queue,
                                    metrics=metrics.for_model(self.name))
        return self.batcher

    def score(self, pixels: np.ndarray) -> Scores:
        """One merged batch through the model (runs in the batcher's worker thread)."""
        return Scores.of(self.classifier, pixels)

    @property
    def variant(self) -> str:
        """The model variant this name serves (fp32, fp16, int8), as its metadata says."""
        return self.classifier.info.variant


def model_name(spec: str) -> tuple[str, str]:
    """`NAME=MODEL` or `MODEL` -> (served name, zoo name or path). A path serves under its file stem."""
    name, sep, model = spec.partition("=")
    if not sep:
        model = spec
        name = Path(spec).name.removesuffix(".onnx") if spec.endswith(".onnx") or os.sep in spec else spec
    if not _NAME.match(name):
        raise EdgeclsError(f"{spec!r}: a served model name may hold letters, digits, '.', '_' and '-' only")
    return name, model


def default_threads() -> int:
    """onnxruntime threads per model: every core but one, which the event loop needs for HTTP and JSON.

    Measured on 2 shared cores (bench_serve.py, cifar10 fp32): with 2 intra-op threads the merged batches
    stalled behind the event loop and other processes (micro-batching 0.4-0.7x batch-1 serving); with 1 they
    ran 1.3x batch-1."""
    return max(1, (os.cpu_count() or 1) - 1)


def load_models(specs: Sequence[str], *, variant: str = "fp32", device: str = "auto", threads: Optional[int] = None,
                workspace: Optional[Union[str, os.PathLike]] = None) -> list[ServedModel]:
    """Open every model once (errors name the model), refusing two models under one name."""
    threads = threads or default_threads()
    models: dict[str, ServedModel] = {}
    for spec in specs:
        name, model = model_name(spec)
        if name in models:
            raise EdgeclsError(f"two models would be served as {name!r}; name one `OTHER={model}`")
        # Idle onnxruntime threads must not spin: the event loop shares the cores between batches.
        clf = Classifier(model, variant=variant, device=device, threads=threads, workspace=workspace, spin=False)
        models[name] = ServedModel(name, clf)
    if not models:
        raise EdgeclsError("no model to serve; name at least one (e.g. `edgecls serve mnist`)")
    return list(models.values())
