"""Batched execution of an ONNX classifier over raw pixels, in the model's own layout."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np

from .preprocess import to_batch
from .session import create_session
from .spec import InputSpec


def run_batches(session, pixels: np.ndarray, spec: InputSpec, batch_size: int = 512) -> np.ndarray:
    """pixels: uint8 or float (N,H,W,C). Returns the model's (N, classes) output as float32."""
    input_name = session.get_inputs()[0].name
    outputs = []
    for start in range(0, len(pixels), batch_size):
        outputs.append(session.run(None, {input_name: to_batch(pixels[start : start + batch_size], spec)})[0])
    if not outputs:
        return np.zeros((0, 0), np.float32)
    return np.concatenate(outputs).astype(np.float32, copy=False)


class SingleImageRunner:
    """Batch-1 calls through an IOBinding whose input and output buffers are allocated once (per thread), so a
    call skips onnxruntime's per-run input conversion and output allocation: mnist int8 batch 1 measured 1.18x
    faster than `session.run` (tests/benchmarks/bench_int8_levers.py). CPU provider only; thread-safe (each
    calling thread gets its own binding and buffers)."""

    def __init__(self, session, input_name: str, output_name: str, input_shape: tuple[int, ...], width: int) -> None:
        self._session, self._input, self._output = session, input_name, output_name
        self._shape, self._width = (1, *input_shape), width
        self._local = threading.local()

    def _bound(self):
        local = self._local
        if getattr(local, "binding", None) is None:
            binding = self._session.io_binding()
            local.x = np.zeros(self._shape, np.float32)
            local.y = np.zeros((1, self._width), np.float32)
            binding.bind_cpu_input(self._input, local.x)
            binding.bind_output(self._output, "cpu", 0, np.float32, local.y.shape, local.y.ctypes.data)
            local.binding = binding
        return local

    def run(self, batch: np.ndarray) -> np.ndarray:
        """batch: (1, *input_shape) in the model's layout, any numeric dtype and strides (converted as it is
        copied into the bound buffer, like astype) -> a fresh (1, width) float32 array."""
        local = self._bound()
        np.copyto(local.x, batch, casting="unsafe")
        self._session.run_with_iobinding(local.binding)
        return local.y.copy()


def cpu_threads(threads: Optional[int]) -> int:
    """The cores a CPU session computes on: `threads` when given, else the cores this process may use."""
    if threads:
        return threads
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class ShardedRunner:
    """Large CPU batches cut into one contiguous shard per core, each shard prepared and run by a one-thread
    session on its own pool thread (numpy and onnxruntime release the GIL): data parallelism instead of
    onnxruntime's intra-op parallelism, which scales poorly on small int8 convolutions
    (tests/benchmarks/bench_int8_levers.py). Each shard runs in calls of `sub_batch` images, sized to the
    core's cache (runtime/sub_batches.py; "auto": timed on the first batch, cached per machine and model).
    The session is built on first use. Thread-safe; order is kept."""

    def __init__(self, make_session: Callable[[], Any], shards: int, min_per_shard: int = 16,
                 sub_batch: Union[int, None, str] = "auto", model: Optional[Path] = None) -> None:
        self._make_session = make_session
        self.shards, self.min_batch = shards, shards * min_per_shard
        self.sub_batch, self._model = sub_batch, model
        self._session = self._pool = None
        self._lock = threading.Lock()

    @classmethod
    def for_model(cls, path: Union[str, os.PathLike], provider: str, threads: Optional[int],
                  spin: bool = True) -> Optional["ShardedRunner"]:
        """The runner `Classifier` gives a model file: one shard per core on the CPU, None when there is one
        core (or another provider) and nothing to split."""
        cores = cpu_threads(threads)
        if provider != "CPUExecutionProvider" or cores < 2:
            return None
        return cls(lambda: create_session(path, "cpu", 1, spin), cores, model=Path(path))

    def takes(self, batch: int) -> bool:
        """Whether a batch this big is split (smaller ones run whole, on the caller's session)."""
        return batch >= self.min_batch

    def session(self):
        """The one-thread session the shards run on (built on first use); also serves batch-1 calls when one
        core is measured faster for them (runtime/batch1_threads.py)."""
        with self._lock:
            return self._session_locked()

    def _session_locked(self):
        if self._session is None:
            self._session = self._make_session()
            self._names = (self._session.get_inputs()[0].name, self._session.get_outputs()[0].name)
        return self._session

    def _ready(self, pixels: np.ndarray, prepare: Callable[[np.ndarray], np.ndarray]) -> None:
        """Session and pool on first use; the sub-batch size on the first batch when "auto"."""
        with self._lock:
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._session_locked()
                self._pool = ThreadPoolExecutor(self.shards, thread_name_prefix="edgecls-shard")
            if self.sub_batch == "auto":  # timed on this first batch (tiled), before it runs
                from . import sub_batches

                sample = np.resize(pixels, (self.shards * sub_batches.PER_SHARD, *pixels.shape[1:]))
                self.sub_batch = sub_batches.choose(self._model, pixels.shape[1:], self.shards,
                                                    lambda size: self._split(sample, prepare, size))

    def run(self, pixels: np.ndarray, prepare: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """pixels: (N, ...) with N >= min_batch; prepare: one shard -> the model's float32 input."""
        self._ready(pixels, prepare)
        return self._split(pixels, prepare, self.sub_batch)

    def _split(self, pixels: np.ndarray, prepare: Callable[[np.ndarray], np.ndarray],
               size: Optional[int]) -> np.ndarray:
        from .sub_batches import cut

        session, (inp, out) = self._session, self._names

        def one(shard: np.ndarray) -> np.ndarray:
            return cut(lambda b: session.run([out], {inp: b})[0], prepare(shard), size)

        return np.concatenate(list(self._pool.map(one, np.array_split(pixels, self.shards))))
