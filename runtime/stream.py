"""Classify an unbounded stream of images with bounded memory.

Decoding runs ahead of inference: while onnxruntime runs batch n, batches n+1.. are decoded.
File paths are decoded in worker processes (Pillow's Python-level parsing holds the GIL, so
threads cannot use a second core); in-memory sources (bytes, PIL images, arrays) use threads.
At most `prefetch + 1` batches are in flight, however many files there are.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional

import numpy as np

from .classifier import Classifier
from .decoding import decode_chunk, worker_init
from .predictions import Prediction
from .preprocess import ImageSource, describe
from .workers import process_pool, processes_wanted


@dataclass(slots=True)
class Result:
    source: str
    prediction: Optional[Prediction]
    error: Optional[str] = None  # why this source was skipped

    @property
    def ok(self) -> bool:
        return self.error is None


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

    processes: decode in worker processes (default: yes when the first source is a file path and
    `workers.processes_wanted(workers)`: more than one worker, the main module guards its work and no library
    such as TensorFlow is loaded).
    """
    iterator = iter(sources)
    first = list(itertools.islice(iterator, 1))
    if not first:
        return
    iterator = itertools.chain(first, iterator)
    if processes is None:
        processes = isinstance(first[0], (str, os.PathLike)) and processes_wanted(workers)
    split = max(1, -(-batch_size // max(workers, 1)))
    pool: Executor = process_pool(workers, worker_init) if processes else ThreadPoolExecutor(
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
