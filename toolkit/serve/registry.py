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
from ..runtime.cores import usable_cores
from .batcher import MicroBatcher
from .config import ServeConfig
from .metrics import ServeMetrics
from .scores import Scores

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass
class ServedModel:
    name: str
    classifier: Classifier
    threads: int = 1  # onnxruntime threads of one model run
    batcher: Optional[MicroBatcher] = field(default=None, repr=False)

    def attach(self, config: ServeConfig, metrics: ServeMetrics) -> MicroBatcher:
        """Create this model's batcher for a server; it starts with the app."""
        self.batcher = MicroBatcher(self.name, self.score, max_batch_size=config.max_batch_size,
                                    max_wait_ms=config.max_wait_ms, max_queue=config.max_queue,
                                    metrics=metrics.for_model(self.name),
                                    runs=config.parallel_runs or self.default_runs())
        return self.batcher

    def default_runs(self) -> int:
        """Batches computing at once: on the CPU as many as fit the cores this process may use (affinity and the
        cgroup CPU quota, runtime/cores.py) at `threads` each, so a model whose runs dominate (cifar10 fp32: ~85%
        of the server's CPU) can use every core; elsewhere one."""
        if self.classifier.provider != "CPUExecutionProvider":
            return 1
        return max(1, usable_cores() // self.threads)

    def score(self, pixels: np.ndarray) -> Scores:
        """One merged batch through the model (runs in the batcher's worker thread)."""
        return Scores.of(self.classifier, pixels)


def model_name(spec: str) -> tuple[str, str]:
    """`NAME=MODEL` or `MODEL` -> (served name, zoo name or path). A path serves under its file stem."""
    name, sep, model = spec.partition("=")
    if not sep:
        model = spec
        name = Path(spec).name.removesuffix(".onnx") if spec.endswith(".onnx") or os.sep in spec else spec
    if not _NAME.match(name):
        raise EdgeclsError(f"{spec!r}: a served model name may hold letters, digits, '.', '_' and '-' only")
    return name, model


def load_models(specs: Sequence[str], *, variant: str = "auto", device: str = "auto", threads: Optional[int] = None,
                workspace: Optional[Union[str, os.PathLike]] = None, tune: str = "auto") -> list[ServedModel]:
    """Open every model once (errors name the model), refusing two models under one name. The variant comes from
    the one variant policy (auto: the fastest validated here, as `edgecls infer` and `Classifier` run it), and
    each engine is tuned here, while loading, so the server reports ready only when no request will pay for it.

    `threads`: onnxruntime threads per model run, default 1: the cores are used by running merged batches side
    by side (ServedModel.default_runs). Measured on 2 cores (bench_serve.py, cifar10 fp32), one run on 2
    intra-op threads spent ~35% more CPU per request than one on 1 thread, two runs on 1 thread each ~20%
    more (with the other core busy, load average 2.5-3), and only the latter gains when it is free."""
    from ..runtime.variant_policy import choose_variant

    threads = threads or 1
    models: dict[str, ServedModel] = {}
    for spec in specs:
        name, model = model_name(spec)
        if name in models:
            raise EdgeclsError(f"two models would be served as {name!r}; name one `OTHER={model}`")
        choice = choose_variant(model, variant, device=device, workspace=workspace, tune=tune)
        # Idle onnxruntime threads must not spin: the event loop shares the cores between batches.
        clf = Classifier(choice, device=device, threads=threads, spin=False, tune=tune)
        models[name] = ServedModel(name, clf, threads)
    if not models:
        raise EdgeclsError("no model to serve; name at least one (e.g. `edgecls serve mnist`)")
    return list(models.values())
