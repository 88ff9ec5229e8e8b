"""What the HTTP and gRPC front ends share: the loaded models, their batchers, the limits and the metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Optional, Sequence

import numpy as np

from .config import ServeConfig
from .errors import ApiError
from .metrics import ServeMetrics
from .protocol import VERSION
from .registry import ServedModel
from .scores import Scores

log = logging.getLogger("edgecls.serve")


class InferenceService:
    """The models of one server. Both protocols look models up, submit pixels and count answers here, so a
    request merges into the same batches and meets the same queue and timeout whichever way it came."""

    def __init__(self, models: Sequence[ServedModel], config: Optional[ServeConfig] = None) -> None:
        self.config = config or ServeConfig()
        self.metrics = ServeMetrics(self.config.max_batch_size)
        self.models = {m.name: m for m in models}
        self.ready = False
        for m in models:
            m.attach(self.config, self.metrics)

    async def start(self) -> None:
        for m in self.models.values():
            await m.batcher.start()
        self.ready = True
        log.info("serving %s", ", ".join(f"{m.name} ({m.classifier.path.name} on {m.classifier.provider})"
                                         for m in self.models.values()))

    async def stop(self) -> None:
        """Answer what the batchers hold, then stop them."""
        self.ready = False
        await asyncio.gather(*(m.batcher.close() for m in self.models.values()))
        log.info("all in-flight requests answered; stopped")

    def model(self, name: str, version: Optional[str] = None) -> ServedModel:
        """The model served as `name` (and `version`, when given), or a 404 naming what this server has."""
        model = self.models.get(name)
        if model is None:
            raise ApiError(404, f"unknown model {name!r}; this server has {', '.join(sorted(self.models))}")
        if version and version != VERSION:
            raise ApiError(404, f"model {name!r} has no version {version!r} (only {VERSION!r})")
        return model

    def model_ready(self, model: ServedModel) -> bool:
        return self.ready and model.batcher.running

    async def scores(self, model: ServedModel, pixels: np.ndarray, timeout_s: Optional[float] = None) -> Scores:
        """Scores of `pixels` from the model's next batch: 503 when its queue is full, 504 after the timeout
        (the server's, or a shorter one the client set)."""
        timeout = self.config.timeout_s if timeout_s is None else min(timeout_s, self.config.timeout_s)
        return await model.batcher.submit(pixels, timeout)

    def answered(self, protocol: str, route: str, name: str, code: str, started: float) -> None:
        """Count one answer; names the server does not have are counted without one (no unbounded labels)."""
        self.metrics.answered(protocol, route, name if name in self.models else "", code,
                              time.perf_counter() - started)
