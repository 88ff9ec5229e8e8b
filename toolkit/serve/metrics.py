"""Prometheus metrics for /metrics: requests, batch sizes, latency, queue depth.

Each app gets its own CollectorRegistry, so several servers (tests, benchmarks) can live in one process.
Labelled children are looked up once and kept: prometheus_client's `labels()` takes a lock and builds a key
on every call, which showed in profiles at thousands of requests per second."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class ModelMetrics:
    """One model's batcher metrics, labels already applied."""
    batch_size: Any
    queue_depth: Any
    queue_wait: Any
    run_seconds: Any
    rejected: Any


class ServeMetrics:
    """The server's metrics, all prefixed `edgecls_`."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, max_batch_size: int) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("edgecls_requests", "Requests answered, by protocol (http, grpc), route and status "
                                "(HTTP status code, gRPC status name)", ["model", "route", "code", "protocol"],
                                registry=r)
        self.latency = Histogram("edgecls_request_latency_seconds", "Time from request to response",
                                 ["model", "route", "protocol"], buckets=LATENCY_BUCKETS, registry=r)
        buckets = sorted({2 ** i for i in range(16) if 2 ** i < max_batch_size} | {max_batch_size})
        self.batch_size = Histogram("edgecls_batch_size", "Images per model run (merged requests)",
                                    ["model"], buckets=buckets, registry=r)
        self.queue_depth = Gauge("edgecls_queue_depth", "Requests admitted for a model, waiting or running",
                                 ["model"], registry=r)
        self.queue_wait = Histogram("edgecls_queue_wait_seconds", "Time a request waited for its batch to start",
                                    ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.run_seconds = Histogram("edgecls_batch_run_seconds", "Time of one model run (one merged batch)",
                                     ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.rejected = Counter("edgecls_rejected", "Requests refused with 503 because the model's queue was full",
                                ["model"], registry=r)
        self._answered: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}

    def for_model(self, model: str) -> ModelMetrics:
        return ModelMetrics(self.batch_size.labels(model), self.queue_depth.labels(model),
                            self.queue_wait.labels(model), self.run_seconds.labels(model), self.rejected.labels(model))

    def answered(self, protocol: str, route: str, model: str, code: str, seconds: float) -> None:
        """Count one answered request and record how long it took."""
        key = (protocol, route, model, code)
        children = self._answered.get(key)
        if children is None:
            children = self._answered[key] = (self.requests.labels(model, route, code, protocol),
                                              self.latency.labels(model, route, protocol))
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
