"""How many images one onnxruntime call should take on one core: measured once per machine and model, cached.

A batch runs layer by layer, so every layer's output for the whole batch is written before the next layer
reads it. When that exceeds the core's cache, each layer streams its input from memory. Cutting a shard
into smaller calls keeps it in cache; making the calls too small pays onnxruntime's fixed per-call cost
instead. The best size depends on the model's activation sizes and on the CPU: at batch 256 on one core of
a 2-core EPYC, 32-image calls ran emotion int8 1.21x, fashion 1.10x and cifar10 1.08x faster than one call,
while mnist (small activations, short calls) ran best whole. So it is timed, not guessed: a batch of
PER_SHARD images per core runs through the shards at a few sizes, taking turns (cores running together, as
they will: they share the last-level cache).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from ..timing import seconds, take_turns
from .cache import cpu_id, file_sha256, onnxruntime_version
from .tuner import Decision, Tuner

KIND = "sub-batch"
PER_SHARD = 128  # images per core in the batch timed (a 256-image batch on 2 cores); cutting at this size = whole
CANDIDATES = (128, 64, 32, 16, 8)
DEFAULT: Optional[int] = None  # untuned: one call per shard
BUDGET_S = 0.4  # all candidates together, after one warm-up round
# A timed batch slower than HEAVY_CALL_S is not timed: per-call overhead is negligible next to its compute, so
# SMALLEST is taken (it keeps the most in cache and costs nothing measurable).
HEAVY_CALL_S = 0.2
SMALLEST = 8
MARGIN = 0.03  # a smaller size must beat one call per shard by this much: below it, timing noise decides
VERSION = 2

RunAt = Callable[[Optional[int]], Any]  # runs the timed batch in calls of the given size (None: whole)


def cut(run: Callable[[np.ndarray], Any], batch: np.ndarray, size: Optional[int]) -> np.ndarray:
    """`run` over `batch` in calls of at most `size` images (None: one call), outputs joined in order."""
    if size is None or len(batch) <= size:
        return run(batch)
    return np.concatenate([run(batch[i : i + size]) for i in range(0, len(batch), size)])


def time_sizes(run_at: RunAt, images: int, budget_s: float = BUDGET_S) -> dict[int, float]:
    """Median seconds per image of the timed batch (`images` in all) at each candidate size, the sizes taking
    turns; {} when one whole run is slower than HEAVY_CALL_S."""
    # warm-up (first runs allocate); also tells a heavy model
    if seconds(run_at, None) + seconds(run_at, None) > 2 * HEAVY_CALL_S:
        return {}
    for size in CANDIDATES:
        run_at(size)
    times = take_turns({size: (lambda size=size: [seconds(run_at, size) / images]) for size in CANDIDATES},
                       budget_s, min_rounds=2, max_rounds=10)
    return {size: statistics.median(t) for size, t in times.items()}


def best_size(per_image: dict[int, float]) -> Optional[int]:
    """The fastest size; None (one call per shard) when that is the largest or not MARGIN slower than the
    fastest; SMALLEST when nothing was timed."""
    if not per_image:
        return SMALLEST
    size, whole = min(per_image, key=per_image.get), max(per_image)
    return None if per_image[whole] <= per_image[size] * (1 + MARGIN) else size


def cache_key(model: Path, input_shape: tuple[int, ...], shards: int) -> dict[str, Any]:
    return {"version": VERSION, "model": file_sha256(model), "input": list(input_shape), "shards": shards,
            "cpu": cpu_id(), "onnxruntime": onnxruntime_version()}


def decide(tuner: Tuner, model: Path, input_shape: tuple[int, ...], shards: int, run_at: RunAt) -> Decision:
    """Images per call for this model on this machine."""

    def measure() -> tuple[Optional[int], dict[str, float]]:
        per_image = time_sizes(run_at, shards * PER_SHARD)
        return best_size(per_image), {str(k): v * 1e6 for k, v in per_image.items()}

    return tuner.decide(KIND, cache_key(model, input_shape, shards), DEFAULT, measure,
                        lambda v, _: v is None or v in CANDIDATES)
