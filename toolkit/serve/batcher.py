"""Dynamic micro-batching: concurrent requests for one model are merged into one model run.

One MicroBatcher per model. Requests wait in an asyncio queue; a single collector task takes the first,
gathers more until it has `max_batch_size` images or the first has waited `max_wait_ms`, runs the merged
batch in one of the model's worker threads, and hands each request its rows back. onnxruntime releases the
GIL while it computes, so the event loop keeps parsing and answering other requests meanwhile. Up to `runs`
batches compute at once (Triton's instance count; one onnxruntime session serves concurrent calls); while
all of them run, new requests pile up in the queue and form the next batch, so batches grow with load.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from .errors import ApiError
from .metrics import ModelMetrics

RunFn = Callable[[np.ndarray], Any]  # (N images) -> a result whose [start:stop] rows belong to one request


@dataclass
class _Item:
    pixels: np.ndarray
    future: asyncio.Future
    enqueued: float = field(default_factory=time.monotonic)


class MicroBatcher:
    """Merge concurrent `submit` calls into batches for `run` (called in up to `runs` dedicated threads)."""

    def __init__(self, name: str, run: RunFn, *, max_batch_size: int, max_wait_ms: float, max_queue: int,
                 metrics: ModelMetrics, runs: int = 1) -> None:
        self.name = name
        self._run = run
        self._runs = runs
        self._slots: Optional[asyncio.Semaphore] = None  # one per batch allowed to compute at once
        self._in_flight: set[asyncio.Task] = set()
        self._max_batch = max_batch_size
        self._max_wait = max_wait_ms / 1000.0
        self._max_queue = max_queue
        self._metrics = metrics
        self._queue: Optional[asyncio.Queue] = None
        self._held: Optional[_Item] = None  # an item that did not fit the previous batch
        self._admitted = 0  # requests waiting or running: the bound behind 503
        self._task: Optional[asyncio.Task] = None
        self._executor: Optional[ThreadPoolExecutor] = None
        self._closing = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._slots = asyncio.Semaphore(self._runs)
        self._executor = ThreadPoolExecutor(max_workers=self._runs, thread_name_prefix=f"edgecls-{self.name}")
        self._task = asyncio.create_task(self._collect(), name=f"batcher-{self.name}")

    async def submit(self, pixels: np.ndarray, timeout_s: float) -> Any:
        """The run's rows for `pixels` (N images), computed in whichever batch they land in.

        Raises ApiError(503) when the model already has `max_queue` requests admitted or is shutting down, and
        ApiError(504) after `timeout_s`. A request that times out or is cancelled before its batch starts is
        dropped from it."""
        if self._closing or not self.running:
            raise ApiError(503, f"model {self.name!r} is shutting down")
        if self._admitted >= self._max_queue:
            self._metrics.rejected.inc()
            raise ApiError(503, f"model {self.name!r} is overloaded ({self._admitted} requests queued); retry later")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        # A timer on the future instead of asyncio.wait_for, which wraps every request in a task of its own.
        timer = loop.call_later(timeout_s, _expire, future, ApiError(
            504, f"model {self.name!r} did not answer within {timeout_s:g} s"))
        self._admitted += 1
        self._metrics.queue_depth.set(self._admitted)
        try:
            self._queue.put_nowait(_Item(pixels, future))
            return await future
        finally:
            timer.cancel()
            self._admitted -= 1
            self._metrics.queue_depth.set(self._admitted)

    async def close(self) -> None:
        """Finish every request already admitted, then stop the worker thread."""
        if self._task is None:
            return
        self._closing = True
        await self._queue.put(None)  # sentinel after the last admitted item: the collector drains up to it
        await self._task
        self._executor.shutdown(wait=True)

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping or self._held is not None:
            await self._slots.acquire()  # a free run first: meanwhile the queue fills and the next batch grows
            first = self._held or await self._queue.get()
            self._held = None
            if first is None:
                self._slots.release()
                break
            batch, size = [first], len(first.pixels)
            # The wait counts from when the oldest request arrived, not from now: requests that queued up while
            # the previous batch ran have waited enough and go at once (Triton's max_queue_delay does the same).
            deadline = first.enqueued + self._max_wait
            while size < self._max_batch and not stopping:
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self._queue.get(), remaining)
                    except asyncio.TimeoutError:
                        break
                if item is None:
                    stopping = True
                    break
                if size + len(item.pixels) > self._max_batch:
                    self._held = item  # starts the next batch
                    break
                batch.append(item)
                size += len(item.pixels)
            task = asyncio.create_task(self._run_batch(loop, batch))
            self._in_flight.add(task)
            task.add_done_callback(self._finished)
        await asyncio.gather(*self._in_flight)

    def _finished(self, task: asyncio.Task) -> None:
        self._in_flight.discard(task)
        self._slots.release()

    async def _run_batch(self, loop: asyncio.AbstractEventLoop, batch: list[_Item]) -> None:
        batch = [item for item in batch if not item.future.done()]  # drop requests that timed out meanwhile
        if not batch:
            return
        pixels = batch[0].pixels if len(batch) == 1 else np.concatenate([item.pixels for item in batch])
        self._metrics.batch_size.observe(len(pixels))
        started = time.monotonic()
        for item in batch:
            self._metrics.queue_wait.observe(started - item.enqueued)
        try:
            result = await loop.run_in_executor(self._executor, self._run, pixels)
        except Exception as exc:  # noqa: BLE001 - a failed run fails its requests, never the collector
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        finally:
            self._metrics.run_seconds.observe(time.monotonic() - started)
        start = 0
        for item in batch:
            stop = start + len(item.pixels)
            if not item.future.done():
                item.future.set_result(result[start:stop])
            start = stop


def _expire(future: asyncio.Future, error: ApiError) -> None:
    if not future.done():
        future.set_exception(error)
