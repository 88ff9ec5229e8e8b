"""The engine: one model file's onnxruntime session(s) and the one runner that serves every call, both fixed when
the model loads (tuned there, not on a first call), and described by `Engine.plan`.

On the CPU the runner is `CpuRunner`: a batch of one goes through preallocated IOBinding buffers on all cores
or on one (whichever the Tuner measured faster for this model), a big batch is split into one shard per core
each run by a one-thread session in cache-sized sub-batches (onnxruntime's intra-op threads scale poorly on
small convolutions), and anything in between is one session call. Other providers (CUDA) get `SessionRunner`:
every batch is one call.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np

from .cores import usable_cores
from .errors import EdgeclsError
from .heads import BINARY, output_width
from .metadata import ModelInfo
from .model_check import check_session
from .preprocess import layout_view, to_batch
from .session import create_session, session_provider
from .spec import InputSpec
from .tuning import Decision, Tuner, batch1, sub_batch

CPU = "CPUExecutionProvider"
MIN_PER_SHARD = 16  # a batch is split only when every core gets at least this many images

Prepare = Callable[[np.ndarray], np.ndarray]  # a shard of the caller's batch -> the model's float32 input


@dataclass(frozen=True)
class EnginePlan:
    """What runs a model's calls, and why: `Classifier.engine`."""

    runner: str  # "cpu" (bound batch 1, per-core shards) or "session" (one call per batch)
    provider: str
    threads: int  # the session's intra-op threads (the cores this process may use, unless given)
    batch1_cores: Optional[int] = None  # cores a batch-1 call runs on (None: a plain session call)
    shards: int = 0  # cores a big batch is split over (0: never split)
    sharded_from: int = 0  # batch size from which it is split
    sub_batch: Optional[int] = None  # images per call within a shard (None: the whole shard)
    tuning: dict[str, Decision] = field(default_factory=dict)

    def __str__(self) -> str:
        if self.runner != "cpu":
            return f"{self.runner} on {self.provider}: every batch one call"
        how = {k: d.note or d.source for k, d in self.tuning.items()}
        text = f"cpu, {self.threads} thread{'s' * (self.threads != 1)}; batch 1 on {self.batch1_cores} " \
               f"core{'s' * (self.batch1_cores != 1)} ({how.get('batch1_cores', 'default')})"
        if self.shards:
            size = "whole shards" if self.sub_batch is None else f"calls of {self.sub_batch}"
            text += f"; batches >= {self.sharded_from} split over {self.shards} cores in {size} " \
                    f"({how.get('sub_batch', 'default')})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"runner": self.runner, "provider": self.provider, "threads": self.threads,
                "batch1_cores": self.batch1_cores, "shards": self.shards, "sharded_from": self.sharded_from,
                "sub_batch": self.sub_batch, "tuning": {k: {"value": d.value, "source": d.source, "note": d.note,
                                                            "timings": d.timings} for k, d in self.tuning.items()}}


class BoundRunner:
    """Batch-1 calls through an IOBinding whose input and output buffers are allocated once per calling
    thread: a call skips onnxruntime's input conversion and output allocation (mnist int8 batch 1 1.18x faster
    than `session.run`), and the caller's pixels are converted while they are copied into the bound input."""

    def __init__(self, session, names: tuple[str, str], input_shape: tuple[int, ...], width: int) -> None:
        self._session, (self._input, self._output) = session, names
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

    def run(self, one: np.ndarray) -> np.ndarray:
        """(1, *input_shape) in the model's layout, any numeric dtype and strides -> a fresh (1, width) array."""
        local = self._bound()
        np.copyto(local.x, one, casting="unsafe")
        self._session.run_with_iobinding(local.binding)
        return local.y.copy()


class ShardedRunner:
    """A big batch cut into one contiguous shard per core, each prepared and run by a one-thread session on its
    own pool thread (numpy and onnxruntime release the GIL), in calls of `sub_batch` images. The session and
    the pool are built on first use (they hold a second copy of the weights). Thread-safe; order is kept."""

    def __init__(self, make_session: Callable[[], Any], shards: int, sub_batch: Optional[int] = None) -> None:
        self._make_session, self.shards, self.sub_batch = make_session, shards, sub_batch
        self.min_batch = shards * MIN_PER_SHARD
        self._session = self._pool = None
        self._lock = threading.Lock()

    def takes(self, batch: int) -> bool:
        return batch >= self.min_batch

    def session(self):
        """The one-thread session (built on first use); batch-1 calls run on it when one core is faster."""
        with self._lock:
            if self._session is None:
                from concurrent.futures import ThreadPoolExecutor

                self._session = self._make_session()
                self._names = (self._session.get_inputs()[0].name, self._session.get_outputs()[0].name)
                self._pool = ThreadPoolExecutor(self.shards, thread_name_prefix="edgecls-shard")
            return self._session

    def run(self, pixels: np.ndarray, prepare: Prepare, size: Union[int, None, str] = "tuned") -> np.ndarray:
        session = self.session()
        inp, out = self._names
        size = self.sub_batch if size == "tuned" else size

        def one(shard: np.ndarray) -> np.ndarray:
            return sub_batch.cut(lambda b: session.run([out], {inp: b})[0], prepare(shard), size)

        return np.concatenate(list(self._pool.map(one, np.array_split(pixels, self.shards))))


class SessionRunner:
    """Every batch as one session call (CUDA and other providers, which parallelise inside the call)."""

    def __init__(self, session, names: tuple[str, str]) -> None:
        self._session, (self._input, self._output) = session, names

    def run(self, batch: np.ndarray, prepare: Prepare, view: Prepare) -> np.ndarray:
        return self._session.run([self._output], {self._input: prepare(batch)})[0]


class CpuRunner(SessionRunner):
    """Batch 1 on bound buffers, big batches over per-core shards, the rest one session call."""

    def __init__(self, session, names: tuple[str, str], one: Optional[BoundRunner],
                 sharded: Optional[ShardedRunner]) -> None:
        super().__init__(session, names)
        self.one, self.sharded = one, sharded

    def run(self, batch: np.ndarray, prepare: Prepare, view: Prepare) -> np.ndarray:
        if len(batch) == 1 and self.one is not None:
            try:
                return self.one.run(view(batch))
            except Exception:  # noqa: BLE001 - e.g. an output width other than declared: the plain call says why
                self.one = None
        if self.sharded is not None and self.sharded.takes(len(batch)):
            return self.sharded.run(batch, prepare)
        return super().run(batch, prepare, view)


def _as_float32(batch: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(batch, dtype=np.float32)


def _same(batch: np.ndarray) -> np.ndarray:
    return batch


class Engine:
    """A loaded model: its checked metadata, its session and the runner its calls go to (see `plan`)."""

    def __init__(self, path: Path, session, info: ModelInfo, runner: SessionRunner, plan: EnginePlan) -> None:
        self.path, self.session, self.info, self.runner, self.plan = path, session, info, runner, plan
        self.spec: InputSpec = info.input_spec
        self.width = output_width(info.output, len(info.labels))
        self._hwc = (self.spec.height, self.spec.width, self.spec.channels)

    @classmethod
    def load(cls, path: Union[str, os.PathLike], device: str = "auto", threads: Optional[int] = None,
             spin: bool = True, tuner: Tuner = Tuner()) -> "Engine":
        """Open `path`, check it is an edgecls model the runtime can serve, and fix its runner (tuned here)."""
        path = Path(path)
        cores = usable_cores(threads)
        session = create_session(path, device, cores, spin)
        info = ModelInfo.from_metadata(session.get_modelmeta().custom_metadata_map, str(path))
        width = output_width(info.output, len(info.labels))
        check_session(session, info.labels, info.input_spec, str(path), width)
        if info.output in BINARY and len(info.labels) != 2:
            raise EdgeclsError(f"{path}: a binary head needs exactly two labels, metadata has {len(info.labels)}")
        names = (session.get_inputs()[0].name, session.get_outputs()[0].name)
        provider = session_provider(session)
        if provider != CPU:
            return cls(path, session, info, SessionRunner(session, names), EnginePlan("session", provider, cores))
        runner, plan = _cpu_runner(path, session, names, info.input_spec.shape, width, cores, spin, tuner)
        return cls(path, session, info, runner, plan)

    def model_input(self, pixels: np.ndarray) -> np.ndarray:
        """(N,H,W,C) pixels -> the model's float32 input in its layout."""
        return to_batch(pixels, self.spec)

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The model's raw (N, width) output for a batch of (N,H,W,C) pixels (any dtype) or a batch already in
        the model's layout; None when the batch is neither (the caller says what it expected)."""
        if batch.shape[1:] == self._hwc:
            return self.runner.run(batch, self.model_input, self._pixels_view)
        if batch.shape[1:] == self.spec.shape:
            return self.runner.run(batch, _as_float32, _same)
        return None

    def _pixels_view(self, pixels: np.ndarray) -> np.ndarray:
        return layout_view(pixels, self.spec)


def _cpu_runner(path: Path, session, names: tuple[str, str], shape: tuple[int, ...], width: int, cores: int,
                spin: bool, tuner: Tuner) -> tuple[CpuRunner, EnginePlan]:
    """The CPU runner for this model on this machine, with its two tuned settings."""
    bound_all = BoundRunner(session, names, shape, width)
    if cores < 2:
        plan = EnginePlan("cpu", CPU, cores, 1, tuning={"batch1_cores": Tuner.fixed("all", "one core")})
        return CpuRunner(session, names, bound_all, None), plan
    sharded = ShardedRunner(lambda: create_session(path, "cpu", 1, spin), cores)
    one_core = lambda: BoundRunner(sharded.session(), names, shape, width)  # noqa: E731 - built only if needed
    cores_choice = batch1.decide(tuner, path, cores, bound_all.run, lambda: one_core().run,
                                 _random_input(1, shape))
    big: list[np.ndarray] = []  # the timed batch, made only when sub-batch sizes are measured

    def run_at(size: Optional[int]) -> np.ndarray:
        big[:] = big or [_random_input(cores * sub_batch.PER_SHARD, shape)]
        return sharded.run(big[0], _same, size)

    size = sub_batch.decide(tuner, path, shape, cores, run_at)
    sharded.sub_batch = size.value
    bound = bound_all if cores_choice.value == "all" else one_core()
    plan = EnginePlan("cpu", CPU, cores, cores if cores_choice.value == "all" else 1, cores, sharded.min_batch,
                      size.value, {"batch1_cores": cores_choice, "sub_batch": size})
    return CpuRunner(session, names, bound, sharded), plan


def _random_input(n: int, shape: tuple[int, ...]) -> np.ndarray:
    """Pixels to time a model on (its speed does not depend on what the image shows)."""
    return np.random.default_rng(0).integers(0, 256, (n, *shape)).astype(np.float32)
