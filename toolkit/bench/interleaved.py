"""Time several engines against each other in one process, taking turns (A, B, C, A, B, C, ...).

On a shared or thermally drifting machine a figure measured minutes apart from another one compares
badly; taking turns in short windows puts every engine under the same conditions, so the ratios hold
even when the absolute figures move.

Each turn starts after a short pause (SETTLE_S). Thread pools spin-wait after their work ends (onnxruntime's
by default, XNNPACK's too): without the pause, the engine whose turn comes next shares the cores with the
previous engine's spinning threads. Measured on cifar10 fp32 at batch 256 on 2 cores: the same session ran
about 10% slower right after another onnxruntime session's turn than after its own; with a 0.2 s pause every
engine measured the same.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import numpy as np

from ..runtime.timing import call_times, window_rate

Predict = Callable[[np.ndarray], np.ndarray]
SETTLE_S = 0.2


def batch_of(x: np.ndarray, batch: int) -> np.ndarray:
    return np.ascontiguousarray(np.resize(x, (batch, *x.shape[1:])))


def throughput(predicts: dict[str, Predict], x: np.ndarray, batch: int, rounds: int,
               window_s: float, settle_s: float = SETTLE_S) -> dict[str, float]:
    """img/s per engine: the median of `rounds` windows of >= window_s, the engines taking turns."""
    data = batch_of(x, batch)
    for predict in predicts.values():
        for _ in range(2):
            predict(data)
    rates: dict[str, list[float]] = {name: [] for name in predicts}
    for _ in range(rounds):
        for name, predict in predicts.items():
            time.sleep(settle_s)  # the previous engine's spinning threads go idle first
            rates[name].append(window_rate(predict, data, items=batch, window_s=window_s))
    return {name: statistics.median(r) for name, r in rates.items()}


def latency(predicts: dict[str, Predict], x: np.ndarray, rounds: int, calls: int,
            settle_s: float = SETTLE_S) -> dict[str, tuple[float, float]]:
    """(p50, p99) batch-1 latency in ms per engine over rounds x calls calls, the engines taking turns each round;
    successive calls cycle through different images."""
    singles = [np.ascontiguousarray(x[i : i + 1]) for i in range(min(len(x), 64))]
    for predict in predicts.values():
        for one in singles[:10]:
            predict(one)
    times: dict[str, list[float]] = {name: [] for name in predicts}
    for r in range(rounds):
        for name, predict in predicts.items():
            time.sleep(settle_s)
            turn = [(singles[(r * calls + i) % len(singles)],) for i in range(calls)]
            times[name] += call_times(predict, turn, calls)
    return {name: (float(np.percentile(t, 50)) * 1e3, float(np.percentile(t, 99)) * 1e3) for name, t in times.items()}
