"""Classify an unbounded stream of images with bounded memory.

Decoding runs in a thread pool (Pillow releases the GIL while it decodes and resizes) one or two
batches ahead of inference, so the CPU decodes batch n+1 while onnxruntime runs batch n.
At most `prefetch + 1` batches are in memory, however many files there are.
"""

from __future__ import annotations

import itertools
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional

import numpy as np

from .classifier import Classifier, Prediction
from .errors import ImageError
from .preprocess import ImageSource, describe


@dataclass(frozen=True)
class Result:
    source: str
    prediction: Optional[Prediction]
    error: Optional[str] = None  # why this file was skipped

    @property
    def ok(self) -> bool:
        return self.error is None


def _decode(clf: Classifier, source: ImageSource):
    try:
        return clf.load(source)
    except ImageError as exc:
        return exc.reason
    except MemoryError:
        return "out of memory while decoding"
    except Exception as exc:  # noqa: BLE001 - a broken file must never stop the run
        return f"unreadable: {type(exc).__name__}: {exc}"


def _decode_chunk(clf: Classifier, chunk: list) -> list:
    return [_decode(clf, s) for s in chunk]


def classify_stream(
    clf: Classifier,
    sources: Iterable[ImageSource],
    batch_size: int = 256,
    workers: int = 2,
    top_k: int = 1,
    prefetch: int = 2,
) -> Iterator[Result]:
    """Yield one Result per source, in input order; bad sources come back with their error."""
    iterator = iter(sources)
    split = max(1, batch_size // max(workers, 1))
    with ThreadPoolExecutor(max_workers=max(workers, 1), thread_name_prefix="edgecls-decode") as pool:
        pending: deque[tuple[list, list[Future]]] = deque()

        def submit_next() -> bool:
            chunk = list(itertools.islice(iterator, batch_size))
            if not chunk:
                return False
            parts = [chunk[i : i + split] for i in range(0, len(chunk), split)]
            pending.append((chunk, [pool.submit(_decode_chunk, clf, part) for part in parts]))
            return True

        for _ in range(prefetch + 1):
            if not submit_next():
                break
        while pending:
            chunk, futures = pending.popleft()
            submit_next()
            decoded = [item for f in futures for item in f.result()]
            good = [i for i, item in enumerate(decoded) if isinstance(item, np.ndarray)]
            predictions = clf.decode(clf.run(np.stack([decoded[i] for i in good])), top_k) if good else []
            by_index = dict(zip(good, predictions))
            for i, source in enumerate(chunk):
                name = describe(source)
                if i in by_index:
                    yield Result(name, by_index[i])
                else:
                    yield Result(name, None, decoded[i])
