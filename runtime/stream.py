"""Classify an unbounded stream of images with bounded memory.

Decoding runs ahead of inference: while onnxruntime runs batch n, batches n+1.. are decoded.
File paths are decoded in worker processes (Pillow's Python-level parsing holds the GIL, so
threads cannot use a second core); in-memory sources (bytes, PIL images, arrays) use threads.
At most `prefetch + 1` batches are in flight, however many files there are.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import sys
from collections import deque
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Optional, Sequence

import numpy as np

from .classifier import Classifier
from .predictions import Prediction
from .errors import ImageError
from .preprocess import ImageSource, describe, load_pixels, prepare_with_stats, working_pixels
from .spec import InputSpec
from .transforms import Pipeline


@dataclass(slots=True)
class Result:
    source: str
    prediction: Optional[Prediction]
    error: Optional[str] = None  # why this source was skipped

    @property
    def ok(self) -> bool:
        return self.error is None


def _decode_one(source: ImageSource, spec: InputSpec, pipeline: Optional[Pipeline]):
    try:
        if pipeline is not None and pipeline.declared:
            return working_pixels(source, spec)
        return load_pixels(source, spec)
    except ImageError as exc:
        return exc.reason
    except MemoryError:
        return "out of memory while decoding"
    except Exception as exc:  # noqa: BLE001 - a broken file must never stop the run
        return f"unreadable: {type(exc).__name__}: {exc}"


def decode_chunk(sources: Sequence[Any], spec: InputSpec, pipeline: Optional[Pipeline] = None
                 ) -> tuple[Optional[np.ndarray], list[int], dict[int, str], dict[str, np.ndarray]]:
    """Decode a chunk: (model-ready pixels of the good ones, their positions, {position: error},
    statistics the preprocessing measured for the good ones)."""
    good, positions, errors = [], [], {}
    for i, source in enumerate(sources):
        out = _decode_one(source, spec, pipeline)
        if isinstance(out, np.ndarray):
            good.append(out)
            positions.append(i)
        else:
            errors[i] = out
    if not good:
        return None, positions, errors, {}
    if pipeline is not None and pipeline.declared:
        pixels, stats = prepare_with_stats(good, spec, pipeline)
        return pixels, positions, errors, stats
    return np.stack(good), positions, errors, {}


def _worker_init() -> None:
    import signal
    import warnings

    # Ctrl-C reaches the whole process group: the parent stops the run and shuts the pool down; a worker
    # dying of KeyboardInterrupt would only print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    from PIL import Image

    # Our own processes: a huge image is already an ImageError, keep Pillow's warning off stderr.
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)


# Libraries that keep busy native thread pools: forking while one of their threads holds a lock leaves the
# child waiting on it forever (seen: decode workers stuck on a futex inside Pillow after TensorFlow had run
# in the same process). With any of them loaded, decoding uses threads unless processes are asked for.
_THREADED_LIBRARIES = ("tensorflow", "torch", "jax", "ray")


def _fork_is_risky() -> bool:
    return any(name in sys.modules for name in _THREADED_LIBRARIES)


def _process_pool(workers: int) -> Executor:
    # fork starts workers in milliseconds with everything already imported; elsewhere spawn.
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method),
                               initializer=_worker_init)


def classify_stream(
    clf: Classifier,
    sources: Iterable[ImageSource],
    batch_size: int = 256,
    workers: int = 2,
    top_k: int = 1,
    prefetch: int = 2,
    processes: Optional[bool] = None,
) -> Iterator[Result]:
    """Yield one Result per source, in input order; bad sources come back with their error.

    processes: decode in worker processes (default: yes when the first source is a file path, workers > 1
    and no library with busy native threads, such as TensorFlow, is loaded: forking those can deadlock).
    """
    iterator = iter(sources)
    first = list(itertools.islice(iterator, 1))
    if not first:
        return
    iterator = itertools.chain(first, iterator)
    if processes is None:
        processes = workers > 1 and isinstance(first[0], (str, os.PathLike)) and not _fork_is_risky()
    split = max(1, -(-batch_size // max(workers, 1)))
    pool: Executor = _process_pool(workers) if processes else ThreadPoolExecutor(
        max_workers=max(workers, 1), thread_name_prefix="edgecls-decode")
    spec = clf.spec
    with pool:
        pending: deque[tuple[list, list[Future]]] = deque()

        def submit_next() -> bool:
            chunk = list(itertools.islice(iterator, batch_size))
            if not chunk:
                return False
            parts = [chunk[i : i + split] for i in range(0, len(chunk), split)]
            pending.append((chunk, [pool.submit(decode_chunk, part, spec, clf.pipeline) for part in parts]))
            return True

        for _ in range(prefetch + 1):
            if not submit_next():
                break
        while pending:
            chunk, futures = pending.popleft()
            submit_next()
            yield from _answer(clf, chunk, [f.result() for f in futures], split, top_k)


def _answer(clf: Classifier, chunk: list, parts: list, split: int, top_k: int) -> Iterator[Result]:
    """One decoded chunk (its parts as `decode_chunk` returned them) through the model: a Result per source."""
    arrays, measured, where, errors = [], [], [], {}
    for n, (pixels, positions, errs, stats) in enumerate(parts):
        offset = n * split
        if pixels is not None:
            arrays.append(pixels)
            measured.append(stats)
            where.extend(offset + p for p in positions)
        errors.update({offset + i: e for i, e in errs.items()})
    predictions = []
    if arrays:
        batch = np.concatenate(arrays)
        stats = {k: np.concatenate([m[k] for m in measured]) for k in measured[0]} \
            if all(measured[0].keys() == m.keys() for m in measured) else {}
        predictions = clf.decode(clf.run(batch), top_k, pixels=batch, stats=stats)
    by_index = dict(zip(where, predictions))
    for i, source in enumerate(chunk):
        name = source if isinstance(source, str) else describe(source)
        prediction = by_index.get(i)
        yield Result(name, prediction, None if prediction is not None else errors[i])
