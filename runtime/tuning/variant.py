"""Which validated variant of a model runs fastest on *this* machine.

int8 is not faster than fp32 everywhere (small convolutions on CPUs whose int8 kernels are weak), so the
choice is measured, not assumed: a short micro-benchmark (batch-1 latency and batch-64 throughput, every
candidate taking turns, each run by the engine the runtime will run it with) once per machine, cached under a
key made of the model files' checksums, the CPU, the cores this process may use, the onnxruntime version and
the execution provider. Nothing a caller chooses per run (threads, spinning, batch size) is in the key: every
entry point of one machine gets the same answer.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..cores import usable_cores
from ..errors import EdgeclsError
from ..metadata import read_info
from ..timing import seconds, take_turns
from .cache import cpu_id, file_sha256, onnxruntime_version
from .tuner import Decision, Tuner

KIND = "variant"
VERSION = 4
BUDGET_S = 0.6  # whole micro-benchmark, all candidates together
THROUGHPUT_BATCH = 64
CPU = "CPUExecutionProvider"


def candidates(files: dict[str, Path], provider: str) -> tuple[dict[str, Path], dict[str, str]]:
    """The variants `auto` may pick (fp32 always; the others only when they passed their export gate, and
    fp16 only on a GPU), and why each other one is left out."""
    chosen, skipped = {"fp32": files["fp32"]}, {}
    for variant, path in files.items():
        if variant == "fp32":
            continue
        if variant == "fp16" and provider == CPU:
            skipped[variant] = "fp16 is for GPUs (onnxruntime's CPU provider computes it slower than fp32)"
            continue
        try:
            validation = read_info(path).validation
        except EdgeclsError as exc:
            skipped[variant] = str(exc)
            continue
        if not validation or validation.get("passed") is False:
            skipped[variant] = "not validated against its gate at export"
            continue
        chosen[variant] = path
    return chosen, skipped


def cache_key(files: dict[str, Path], provider: str) -> dict[str, Any]:
    return {"version": VERSION, "files": {v: file_sha256(p) for v, p in sorted(files.items())}, "cpu": cpu_id(),
            "cores": usable_cores(), "onnxruntime": onnxruntime_version(), "provider": provider}


def valid_timings(measured: Any, variant: Any) -> bool:
    """A cached measurement that names its winner and holds only positive, finite figures."""
    try:
        return variant in measured and all(math.isfinite(m[k]) and m[k] > 0 for m in measured.values()
                                           for k in ("latency_ms", "per_image_ms"))
    except (TypeError, KeyError):
        return False


def fastest(measured: dict[str, dict[str, float]]) -> str:
    """The candidate with the smallest geometric mean of batch-1 latency and batch-64 per-image time
    (ties: the first, fp32)."""
    return min(measured, key=lambda v: math.sqrt(measured[v]["latency_ms"] * measured[v]["per_image_ms"]))


def decide(tuner: Tuner, files: dict[str, Path], device: str, provider: str,
           budget_s: float = BUDGET_S) -> Decision:
    """The fastest of `files` (already filtered by `candidates`) on this machine; fp32 untuned."""
    if len(files) == 1:
        return Tuner.fixed("fp32", "the only validated variant")

    def measure() -> tuple[str, dict[str, dict[str, float]]]:
        measured = time_variants(files, device, budget_s)
        return fastest(measured), measured

    return tuner.decide(KIND, cache_key(files, provider), "fp32", measure,
                        lambda v, timings: v in files and set(timings) == set(files) and valid_timings(timings, v))


def time_variants(files: dict[str, Path], device: str, budget_s: float = BUDGET_S) -> dict[str, dict[str, float]]:
    """Per candidate: median batch-1 latency and median per-image time at batch 64, the candidates taking turns
    in short slices so that load from other processes hits them all alike; each runs on the engine the
    runtime gives it (untuned: this is not the place to tune the engines too)."""
    from ..engine import Engine

    engines = {v: Engine.load(path, device, None, True, Tuner("off")) for v, path in files.items()}
    spec = next(iter(engines.values())).info.input_spec
    pixels = np.random.default_rng(0).integers(0, 256, (THROUGHPUT_BATCH, spec.height, spec.width, spec.channels),
                                               dtype=np.uint8)
    big, one = engines_input(engines, pixels)
    for v, engine in engines.items():  # warm-up: first runs allocate and pick kernels
        engine.run(big[v])
        engine.run(one[v])
    turns = {}
    for v, engine in engines.items():  # per candidate in turn: 5 batch-1 calls, then one batch of 64
        turns[v, "latency_ms"] = lambda e=engine, v=v: [seconds(e.run, one[v]) for _ in range(5)]
        turns[v, "per_image_ms"] = lambda e=engine, v=v: [seconds(e.run, big[v]) / THROUGHPUT_BATCH]
    times = take_turns(turns, budget_s, min_rounds=3, max_rounds=50)
    return {v: {metric: statistics.median(times[v, metric]) * 1e3 for metric in ("latency_ms", "per_image_ms")}
            for v in engines}


def engines_input(engines: dict, pixels: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The batch of 64 and the batch of one in each engine's own input layout."""
    big = {v: e.model_input(pixels) for v, e in engines.items()}
    return big, {v: b[:1].copy() for v, b in big.items()}


def speedup(measured: dict[str, dict[str, float]], variant: str = "int8") -> Optional[dict[str, float]]:
    """`variant` vs fp32 here: {'latency': fp32/variant batch-1 time, 'throughput': fp32/variant per image}."""
    a, b = measured.get(variant), measured.get("fp32")
    if not a or not b:
        return None
    return {"latency": b["latency_ms"] / a["latency_ms"], "throughput": b["per_image_ms"] / a["per_image_ms"]}
