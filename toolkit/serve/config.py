"""Server knobs in one place, so the CLI, the tests and the benchmark set them the same way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..runtime.errors import EdgeclsError


@dataclass(frozen=True)
class ServeConfig:
    max_batch_size: int = 32  # images per model run; 1 turns micro-batching off
    max_wait_ms: float = 2.0  # how long a batch waits for more requests once its first one arrived
    parallel_runs: Optional[int] = None  # merged batches of one model computing at once (None: fill the cores)
    max_queue: int = 256  # admitted requests per model (waiting or running) before 503
    max_body_bytes: int = 16 * 1024 * 1024  # larger request bodies get 413
    timeout_s: float = 10.0  # a request still unanswered after this gets 504
    top_k: int = 3  # labels returned when a request does not ask
    drain_s: float = 30.0  # on shutdown, how long in-flight requests may take to finish

    def __post_init__(self) -> None:
        checks = {
            "max_batch_size": self.max_batch_size >= 1,
            "max_wait_ms": self.max_wait_ms >= 0,
            "parallel_runs": self.parallel_runs is None or self.parallel_runs >= 1,
            "max_queue": self.max_queue >= 1,
            "max_body_bytes": self.max_body_bytes >= 1024,
            "timeout_s": self.timeout_s > 0,
            "top_k": self.top_k >= 1,
            "drain_s": self.drain_s >= 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise EdgeclsError(f"invalid server setting {', '.join(f'{n}={getattr(self, n)}' for n in bad)}")
