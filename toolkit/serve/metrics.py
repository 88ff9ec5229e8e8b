"""Prometheus metrics for /metrics: requests, batch sizes, latency, queue depth.

Each app gets its own CollectorRegistry, so several servers (tests, benchmarks) can live in one process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServeMetrics:
    """The server's metrics, all prefixed `edgecls_`."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, max_batch_size: int) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("edgecls_requests", "HTTP requests answered, by route and status code",
                                ["model", "route", "code"], registry=r)
        self.latency = Histogram("edgecls_request_latency_seconds", "Time from request to response",
                                 ["model", "route"], buckets=LATENCY_BUCKETS, registry=r)
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

    def render(self) -> bytes:
        return generate_latest(self.registry)
