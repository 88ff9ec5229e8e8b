"""Whether one image runs faster on one core or on all of them: measured once per machine and model, cached.

Splitting one image's layers across cores pays a hand-off per node; a small model's nodes are too short for
that to pay. On the project's 2-core EPYC, mnist int8 ran a batch-1 call in 12.3 us on one thread against
13.8 us on two, while fashion, emotion and cifar10 ran 1.4-1.5x faster on two (README "Speed"). So it is
timed, not guessed: on a model's first batch-1 call the two ways take turns for about BUDGET_S, and one core
is kept only when it wins by MARGIN (a model slower than HEAVY_CALL_S per call keeps all cores untimed). The
answer is cached with the other per-machine measurements.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from .machine_cache import cpu_id, file_sha256, read_entry, write_entry
from .timing import seconds, take_turns

CHOICES = ("all", "one")  # all cores (the session's intra-op threads) or one core
BUDGET_S = 0.2
# A model whose batch-1 call on all cores takes longer than this keeps all cores untimed: its nodes are long
# next to a hand-off, and the one-core session (a second copy of the weights) is never built for it.
HEAVY_CALL_S = 0.0005
CALLS_PER_TURN = 20
MARGIN = 0.03  # one core must beat all cores by this much: below it, timing noise decides
CACHE_PREFIX = "batch1-threads-"
CACHE_VERSION = 1

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


def cache_key(model: Path, threads: int, spin: bool) -> dict[str, Any]:
    import onnxruntime

    return {"version": CACHE_VERSION, "model": file_sha256(model), "threads": threads, "spin": spin,
            "cpu": cpu_id(), "onnxruntime": onnxruntime.__version__}


def choose(model: Optional[Path], threads: int, spin: bool, run_all: RunOne,
           make_run_one: Callable[[], RunOne], one: np.ndarray) -> str:
    """'all' or 'one' for this model on this machine: cached, else timed on `one` (a model-ready batch of one
    image) and cached (model None: a model without a file, timed every time). `make_run_one` is called only when
    the one-core way is timed."""
    key = cache_key(model, threads, spin) if model is not None else None
    if key is not None:
        entry = read_entry(key, CACHE_PREFIX)
        if entry is not None and entry.get("choice") in CHOICES:
            return entry["choice"]
    heavy = min(seconds(run_all, one) for _ in range(3))
    if heavy > HEAVY_CALL_S:
        choice, per_call = "all", {"all": heavy}
    else:
        per_call = time_choices({"all": run_all, "one": make_run_one()}, one)
        choice = best(per_call)
    if key is not None:
        write_entry(key, {"choice": choice, "per_call_us": {k: v * 1e6 for k, v in per_call.items()}}, CACHE_PREFIX)
    return choice

