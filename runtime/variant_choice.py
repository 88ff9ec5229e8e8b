"""variant="auto": run the fastest variant of a model that passed its gate on *this* machine.

int8 is not faster than fp32 everywhere (small convolutions on CPUs whose int8 kernels are weak), so the
choice is measured, not assumed: a short interleaved micro-benchmark (batch 1 latency and batch 64
throughput, every candidate taking turns) once per machine, cached in the user cache dir under a key made
of the model files' checksums, the CPU, the onnxruntime version, the thread count and the device. A cache
file that cannot be read or does not match is measured again (and rewritten atomically).
"""

from __future__ import annotations

import math
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from .errors import EdgeclsError
from .inference import ShardedRunner
from .machine_cache import cpu_id, entry_path, file_sha256, read_entry, write_entry
from .metadata import ModelInfo
from .store import ModelFolder, find_onnx
from .preprocess import to_batch
from .session import create_session
from .timing import seconds, take_turns
from .variants import split_name

CACHE_VERSION = 3  # 2: big batches measured through the per-core shards; 3: ...in cache-sized sub-batches
BUDGET_S = 0.6  # whole micro-benchmark, all candidates together
THROUGHPUT_BATCH = 64


@dataclass
class VariantChoice:
    variant: str
    path: Path
    measured: dict[str, dict[str, float]] = field(default_factory=dict)  # variant -> latency_ms, per_image_ms
    cached: bool = False
    skipped: dict[str, str] = field(default_factory=dict)  # variant -> why it was not a candidate

    @property
    def int8_speedup(self) -> Optional[dict[str, float]]:
        """int8 vs fp32 here: {'latency': fp32/int8 batch-1 time, 'throughput': fp32/int8 per-image time}."""
        a, b = self.measured.get("int8"), self.measured.get("fp32")
        if not a or not b:
            return None
        return {"latency": b["latency_ms"] / a["latency_ms"], "throughput": b["per_image_ms"] / a["per_image_ms"]}

    @property
    def note(self) -> str:
        """One sentence: what auto picked and why, and whether int8 is faster than fp32 on this machine."""
        text = f"variant auto: {self.variant}"
        if len(self.measured) > 1:
            text += " (fastest here of " + ", ".join(sorted(self.measured)) + ("; cached measurement)" if self.cached
                                                                               else "; measured now, cached)")
        s = self.int8_speedup
        if s is not None:
            verdict = "faster" if min(s.values()) >= 1 else "NOT faster"
            text += (f"; int8 is {verdict} than fp32 on this machine: {s['latency']:.2f}x at batch 1, "
                     f"{s['throughput']:.2f}x at batch {THROUGHPUT_BATCH}")
        for variant, why in self.skipped.items():
            text += f"; {variant} not considered: {why}"
        return text


def candidate_files(model: str, workspace: Optional[Union[str, os.PathLike]] = None) -> dict[str, Path]:
    """The variant files of model name `model` (fp32 first), all from the folder its fp32 file is found in (the
    workspace, else the shipped zoo; variants are never mixed); the store's error when there is none."""
    return ModelFolder(model, find_onnx(model, "fp32", workspace).parent).variants()


def cache_key(files: dict[str, Path], device: str, threads: Optional[int], spin: bool = True) -> dict[str, Any]:
    import onnxruntime

    return {"version": CACHE_VERSION, "files": {v: file_sha256(p) for v, p in sorted(files.items())}, "cpu": cpu_id(),
            "onnxruntime": onnxruntime.__version__, "threads": threads or os.cpu_count(), "device": device,
            "spin": spin}


def _cache_path(key: dict[str, Any]) -> Path:
    return entry_path(key)


def read_cache(key: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The cached entry for `key`, or None when missing, unreadable, corrupt or for another key."""
    try:
        entry = read_entry(key)
        measured = entry["measured"]
        if entry["variant"] not in measured or not all(
                math.isfinite(m["latency_ms"]) and m["latency_ms"] > 0 and math.isfinite(m["per_image_ms"])
                and m["per_image_ms"] > 0 for m in measured.values()):
            return None
        return entry
    except (KeyError, TypeError, AttributeError):
        return None


def _write_cache(key: dict[str, Any], variant: str, measured: dict[str, dict[str, float]],
                 skipped: dict[str, str]) -> None:
    write_entry(key, {"variant": variant, "measured": measured, "skipped": skipped})


def measure(sessions: dict[str, Any], info: ModelInfo, budget_s: float = BUDGET_S,
            sharded: Optional[dict[str, Optional[ShardedRunner]]] = None) -> dict[str, dict[str, float]]:
    """Per candidate: median batch-1 latency and median per-image time at batch 64, the candidates taking
    turns in short slices so that load from other processes hits them all alike. `sharded`: the per-core
    runners `Classifier` sends big CPU batches to, so batch 64 is timed the way it will run."""
    spec = info.input_spec
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (THROUGHPUT_BATCH, spec.height, spec.width, spec.channels), dtype=np.uint8)
    big, one = to_batch(pixels, spec), to_batch(pixels[:1], spec)
    feeds = {v: s.get_inputs()[0].name for v, s in sessions.items()}
    runs = {v: _big_batch_call(s, feeds[v], (sharded or {}).get(v), len(big)) for v, s in sessions.items()}
    for v, s in sessions.items():  # warm-up: first runs allocate and pick kernels
        runs[v](big)
        s.run(None, {feeds[v]: one})
    turns = {}
    for v, s in sessions.items():  # per candidate in turn: 5 batch-1 calls, then one batch of 64
        turns[v, "latency_ms"] = lambda s=s, v=v: [seconds(s.run, None, {feeds[v]: one}) for _ in range(5)]
        turns[v, "per_image_ms"] = lambda v=v: [seconds(runs[v], big) / THROUGHPUT_BATCH]
    times = take_turns(turns, budget_s, min_rounds=3, max_rounds=50)
    return {v: {metric: statistics.median(times[v, metric]) * 1e3 for metric in ("latency_ms", "per_image_ms")}
            for v in sessions}


def _big_batch_call(session, feed: str, sharded: Optional[ShardedRunner], batch: int):
    """How `Classifier.run` runs a batch this big: through the per-core shards when they take it."""
    if sharded is not None and sharded.takes(batch):
        return lambda b: sharded.run(b, np.ascontiguousarray)
    return lambda b: session.run(None, {feed: b})


def fastest(measured: dict[str, dict[str, float]]) -> str:
    """The candidate with the smallest geometric mean of batch-1 latency and batch-64 per-image time
    (ties: the first, fp32)."""
    return min(measured, key=lambda v: math.sqrt(measured[v]["latency_ms"] * measured[v]["per_image_ms"]))


def choose_variant(model: str, device: str = "auto", threads: Optional[int] = None,
                   workspace: Optional[Union[str, os.PathLike]] = None, spin: bool = True,
                   budget_s: float = BUDGET_S, use_cache: bool = True) -> VariantChoice:
    """The fastest variant of model name `model` that passed its export gate, on this machine."""
    files = candidate_files(model, workspace)
    skipped: dict[str, str] = {}
    provider = _expected_provider(device)
    if provider == "CPUExecutionProvider" and "fp16" in files:
        del files["fp16"]
        skipped["fp16"] = "fp16 is for GPUs (onnxruntime's CPU provider computes it slower than fp32)"
    if len(files) == 1:
        return VariantChoice("fp32", files["fp32"], skipped=skipped)
    key = cache_key(files, provider, threads, spin)
    entry = read_cache(key) if use_cache else None
    if entry is not None:  # same files (checksums) as when they were checked and measured
        return VariantChoice(entry["variant"], files[entry["variant"]], entry["measured"], cached=True,
                             skipped={**skipped, **entry.get("skipped", {})})
    sessions: dict[str, Any] = {}
    info = None
    for variant, path in files.items():
        try:
            session = create_session(path, device, threads, spin)
            meta = ModelInfo.from_metadata(session.get_modelmeta().custom_metadata_map, str(path))
        except EdgeclsError as exc:
            if variant == "fp32":
                raise
            skipped[variant] = str(exc)
            continue
        if variant != "fp32" and (not meta.validation or meta.validation.get("passed") is False):
            skipped[variant] = "not validated against its gate at export"
            continue
        sessions[variant] = session
        info = info or meta
    sharded = {v: ShardedRunner.for_model(files[v], provider, threads, spin) for v in sessions}
    measured = measure(sessions, info, budget_s, sharded) if len(sessions) > 1 else {}
    variant = fastest(measured) if measured else "fp32"
    if use_cache and measured:
        _write_cache(key, variant, measured, skipped)
    return VariantChoice(variant, files[variant], measured, skipped=skipped)


def _expected_provider(device: str) -> str:
    """The provider create_session will pick for `device` (CUDA only when this onnxruntime has it)."""
    from .session import available_providers

    has_cuda = "CUDAExecutionProvider" in available_providers()
    return "CUDAExecutionProvider" if device in ("cuda", "auto") and has_cuda else "CPUExecutionProvider"


def cached_int8_note(model_path: Path, threads: Optional[int], spin: bool = True) -> Optional[str]:
    """For a model loaded as int8 by name or path: a warning line when this machine's cached measurement says
    int8 is not faster than fp32 (never measures; None when nothing is cached)."""
    parsed = split_name(model_path.name)
    if parsed is None or parsed[1] != "int8":
        return None
    name = parsed[0]
    files = {v: p for v, p in ModelFolder(name, model_path.parent).variants().items() if v != "fp16"}
    if set(files) != {"fp32", "int8"}:
        return None
    for provider in ("CPUExecutionProvider", "CUDAExecutionProvider"):
        try:
            entry = read_cache(cache_key(files, provider, threads, spin))
        except OSError:
            return None
        if entry is None:
            continue
        choice = VariantChoice(entry["variant"], files[entry["variant"]], entry["measured"], cached=True)
        s = choice.int8_speedup
        if s and min(s.values()) < 1:
            return (f"{model_path.name}: int8 is not faster than fp32 on this machine ({s['latency']:.2f}x at batch 1, "
                    f"{s['throughput']:.2f}x at batch {THROUGHPUT_BATCH}; measured by variant auto); fp32 is "
                    f"{name}.onnx")
    return None
