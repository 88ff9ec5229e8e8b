"""Ctrl-C as a request, not an exception: a KeyboardInterrupt raised at a random point inside a process pool
(while it forks or holds a lock) can leave the run hung. The command checks `stop.requested` between
results instead, finishes cleanly, keeps what it wrote and exits 130. A second Ctrl-C aborts at once."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator


class StopRequest:
    def __init__(self) -> None:
        self.requested = False

    def _handler(self, signum, frame) -> None:  # noqa: ANN001 - signal handler signature
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True


@contextmanager
def stop_on_interrupt() -> Iterator[StopRequest]:
    """Within the block, SIGINT sets `.requested` (main thread only; elsewhere it stays an exception)."""
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.signal(signal.SIGINT, stop._handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
