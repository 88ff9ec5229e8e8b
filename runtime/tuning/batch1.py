"""Whether one image runs faster on one core or on all of them: measured once per machine and model, cached.

Splitting one image's layers across cores pays a hand-off per node; a small model's nodes are too short for
that to pay. On a 2-core EPYC, mnist int8 ran a batch-1 call in 12.3 us on one thread against 13.8 us on two,
while fashion, emotion and cifar10 ran 1.4-1.5x faster on two. So it is timed, not guessed: when a model is
loaded the two ways take turns for about BUDGET_S, and one core is kept only when it wins by MARGIN (a model
slower than HEAVY_CALL_S per call keeps all cores untimed: its nodes are long next to a hand-off).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..timing import seconds, take_turns
from .cache import cpu_id, file_sha256, onnxruntime_version
from .tuner import Decision, Tuner

KIND = "batch1-cores"
CHOICES = ("all", "one")  # all cores (the session's intra-op threads) or one core
DEFAULT = "all"
BUDGET_S = 0.2
HEAVY_CALL_S = 0.0005
CALLS_PER_TURN = 20
MARGIN = 0.03  # one core must beat all cores by this much: below it, timing noise decides
VERSION = 2

RunOne = Callable[[np.ndarray], Any]


def time_choices(runs: dict[str, RunOne], one: np.ndarray, budget_s: float = BUDGET_S) -> dict[str, float]:
    """Median seconds per batch-1 call of each way, the ways taking turns of CALLS_PER_TURN calls."""
    for run in runs.values():  # warm-up: first calls allocate
        for _ in range(3):
            run(one)
    times = take_turns({name: (lambda run=run: [seconds(run, one) for _ in range(CALLS_PER_TURN)])
                        for name, run in runs.items()}, budget_s, min_rounds=3, max_rounds=200)
    return {name: statistics.median(t) for name, t in times.items()}


def best(per_call: dict[str, float]) -> str:
    """'one' when one core is MARGIN faster than all, else 'all'."""
    return "one" if per_call["one"] * (1 + MARGIN) < per_call["all"] else "all"


def cache_key(model: Path, threads: int) -> dict[str, Any]:
    """What the answer depends on: the model, how many cores "all" is, the CPU and onnxruntime (not whether idle
    threads spin: `edgecls tune`, `infer` and `Classifier` then share one measurement)."""
    return {"version": VERSION, "model": file_sha256(model), "threads": threads, "cpu": cpu_id(),
            "onnxruntime": onnxruntime_version()}


def decide(tuner: Tuner, model: Path, threads: int, run_all: RunOne,
           make_run_one: Callable[[], RunOne], one: np.ndarray) -> Decision:
    """'all' or 'one' for this model on this machine (`one`: a model-ready batch of one image).
    `make_run_one` is called only when the one-core way is timed."""

    def measure() -> tuple[str, dict[str, float]]:
        heavy = min(seconds(run_all, one) for _ in range(3))
        if heavy > HEAVY_CALL_S:
            return "all", {"all_us": heavy * 1e6}
        per_call = time_choices({"all": run_all, "one": make_run_one()}, one)
        return best(per_call), {f"{k}_us": v * 1e6 for k, v in per_call.items()}

    return tuner.decide(KIND, cache_key(model, threads), DEFAULT, measure, lambda v, _: v in CHOICES)
