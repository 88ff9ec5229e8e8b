"""Run every (format, device) row of a benchmark, each in its own process, and score them together."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from ..formatting import percent

ROW_TIMEOUT_S = 900


@dataclass(frozen=True)
class BenchConfig:
    batch_sizes: tuple[int, ...] = (1, 32, 256)
    devices: tuple[str, ...] = ("cpu",)
    threads: int = os.cpu_count() or 1
    min_seconds: float = 0.5
    repeats: int = 5
    latency_runs: int = 300


@dataclass(frozen=True)
class Row:
    label: str  # what the table shows, e.g. "ONNX int8"
    format: str  # worker backend: keras | tflite | onnx
    model: Path
    device: str


@dataclass
class Outcome:
    row: Row
    result: Optional[dict[str, Any]] = None
    error: Optional[str] = None
    metrics: dict[str, Any] = field(default_factory=dict)


def cuda_available() -> bool:
    try:
        import onnxruntime

        return "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    except ImportError:
        return False


def plan_rows(keras_path: Optional[Path], onnx_files: dict[str, Path], devices: tuple[str, ...]) -> list[Row]:
    """Keras, TFLite fp32 and every ONNX variant present, on each device (TFLite: CPU only); a bare .onnx file
    (no Keras source) gets its ONNX row only."""
    rows = []
    for device in devices:
        if keras_path is not None:
            rows.append(Row("Keras", "keras", keras_path, device))
            rows.append(Row("TFLite fp32", "tflite", keras_path, device))
        for variant, path in onnx_files.items():
            rows.append(Row(f"ONNX {variant}", "onnx", path, device))
    return rows


def _run_row(row: Row, data: Path, probs: Path, cfg: BenchConfig) -> dict[str, Any]:
    args = {"format": row.format, "model": str(row.model), "device": row.device, "data": str(data),
            "probs_out": str(probs), "batch_sizes": list(cfg.batch_sizes), "threads": cfg.threads,
            "min_seconds": cfg.min_seconds, "repeats": cfg.repeats, "latency_runs": cfg.latency_runs}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "edgecls.bench.worker", json.dumps(args)], capture_output=True,
                          text=True, timeout=ROW_TIMEOUT_S, env=env)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise RuntimeError(lines[-1] if lines else f"worker exited {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_bench(rows: list[Row], x: np.ndarray, y: Optional[np.ndarray], cfg: BenchConfig,
              on_row: Callable[[Outcome], None] = lambda o: None) -> list[Outcome]:
    """Each row's accuracy on (x, y) and top-1 agreement with the first Keras row of its device."""
    outcomes: list[Outcome] = []
    reference: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory(prefix="edgecls-bench-") as tmp:
        data = Path(tmp) / "x.npy"
        np.save(data, x, allow_pickle=False)
        for i, row in enumerate(rows):
            out = Outcome(row)
            probs_path = Path(tmp) / f"probs{i}.npy"
            try:
                out.result = _run_row(row, data, probs_path, cfg)
                probs = np.load(probs_path, allow_pickle=False)
                pred = probs.argmax(1)
                if row.format == "keras":
                    reference.setdefault(row.device, pred)
                ref = reference.get(row.device, reference.get("cpu"))
                out.metrics = {
                    "accuracy": float((pred == y).mean()) if y is not None else None,
                    "agreement": float((pred == ref).mean()) if ref is not None else None,
                }
            except subprocess.TimeoutExpired:
                out.error = f"timed out after {ROW_TIMEOUT_S}s"
            except (RuntimeError, ValueError, OSError) as exc:
                out.error = str(exc)
            outcomes.append(out)
            on_row(out)
    return outcomes


def outcomes_to_json(outcomes: list[Outcome], cfg: BenchConfig, meta: dict[str, Any]) -> dict[str, Any]:
    return {
        **meta,
        "batch_sizes": list(cfg.batch_sizes),
        "threads": cfg.threads,
        "method": f"median of {cfg.repeats} windows of >= {cfg.min_seconds}s after warm-up; latency over "
                  f"{cfg.latency_runs} batch-1 calls; each row in its own process (peak RSS = VmHWM)",
        "rows": [{"label": o.row.label, "format": o.row.format, "device": o.row.device, "model": o.row.model.name,
                  "error": o.error, **(o.result or {}), **o.metrics} for o in outcomes],
    }


def failed_rows(report: dict[str, Any]) -> tuple[int, int]:
    """(rows that could not run, all rows): every row failing is an error, some failing a partial result."""
    rows = report["rows"]
    return sum(1 for r in rows if r.get("error")), len(rows)


def markdown(report: dict[str, Any]) -> str:
    bs = report["batch_sizes"]
    head = ["format", "device", "size", "test acc", "agree w/ Keras"] + [f"img/s @{b}" for b in bs] + \
           ["p50 ms @1", "p99 ms @1", "peak RSS"]
    lines = [f"# Benchmark: {report['name']}", "",
             f"{report['machine']}; {report['threads']} threads; {report['samples']} test images "
             f"({report['dataset']}). {report['method']}. Measured {report['created']}.", "",
             "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in report["rows"]:
        if r.get("error"):
            lines.append(f"| {r['label']} | {r['device']} | could not run: {r['error']} |" + " |" * (len(head) - 3))
            continue
        cells = [r["label"], r["device"], f"{r['size_bytes'] / 1024:,.0f} KiB", percent(r.get("accuracy")),
                 percent(r.get("agreement"))] + [f"{r['throughput'][str(b)]:,.0f}" for b in bs] + \
                [f"{r['latency_p50_ms']:.3f}", f"{r['latency_p99_ms']:.3f}", f"{r['peak_rss_mb']:.0f} MB"]
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    if report.get("int8_note"):
        text += f"\n{report['int8_note']}.\n"
    h2h = report.get("head_to_head")
    if h2h and h2h.get("error"):
        text += f"\nedgecls vs peers could not run: {h2h['error']}\n"
    elif h2h:
        text += head_to_head_markdown(h2h)
    return text


HEAD_TO_HEAD_TIMEOUT_S = 1200


def run_head_to_head(keras_path: Optional[Path], files: dict[str, Path], x: np.ndarray, y: Optional[np.ndarray],
                     calibration: Optional[np.ndarray], threads: int, rounds: int = 5) -> dict[str, Any]:
    """edgecls's variants against the peers (Keras, TFLite fp32 / full-int8, Keras->ONNX), all in one worker
    process taking turns (edgecls.bench.headtohead). Raises RuntimeError with the worker's last line."""
    with tempfile.TemporaryDirectory(prefix="edgecls-h2h-") as tmp:
        data = Path(tmp) / "data.npz"
        arrays = {"x": x, **({"y": y} if y is not None else {}),
                  **({"calib": calibration} if calibration is not None else {})}
        np.savez(data, **arrays)
        args = {"keras": str(keras_path) if keras_path else None, "files": {k: str(v) for k, v in files.items()},
                "data": str(data), "config": {"threads": threads, "rounds": rounds}}
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
        proc = subprocess.run([sys.executable, "-m", "edgecls.bench.headtohead", json.dumps(args)],
                              capture_output=True, text=True, timeout=HEAD_TO_HEAD_TIMEOUT_S, env=env)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise RuntimeError(lines[-1] if lines else f"head-to-head worker exited {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def head_to_head_markdown(h2h: dict[str, Any]) -> str:
    from .headtohead import ratio_lines

    lines = ["", f"## edgecls vs peers, one process, taking turns (batch {h2h['batch']})", "",
             f"{h2h['method']}. TFLite int8: {h2h['tflite_int8_io']}.", "",
             "| engine | size | test acc | agree w/ Keras | img/s | p50 ms @1 | p99 ms @1 |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in h2h["rows"]:
        if r.get("error"):
            lines.append(f"| {r['label']} | could not run: {r['error']} | | | | | |")
            continue
        lines.append(f"| {r['label']} | {r['size_bytes'] / 1024:,.0f} KiB | {percent(r.get('accuracy'))} | "
                     f"{percent(r.get('agreement'))} | {r['throughput']:,.0f} | {r['latency_p50_ms']:.3f} | "
                     f"{r['latency_p99_ms']:.3f} |")
    return "\n".join(lines + [""] + [f"- {line}" for line in ratio_lines(h2h)]) + "\n"


def int8_speed_note(report: dict[str, Any]) -> Optional[str]:
    """'int8 is not faster than fp32 here' from the per-format rows (largest batch and batch-1 p50), per device;
    None when int8 is faster on every device or either row is missing."""
    notes = []
    for device in dict.fromkeys(r["device"] for r in report["rows"]):
        rows = {r["label"]: r for r in report["rows"] if r["device"] == device and not r.get("error")}
        a, b = rows.get("ONNX int8"), rows.get("ONNX fp32")
        if not a or not b:
            continue
        big = str(max(int(k) for k in a["throughput"]))
        tp = a["throughput"][big] / b["throughput"][big]
        lat = b["latency_p50_ms"] / a["latency_p50_ms"]
        if tp < 1 or lat < 1:
            notes.append(f"int8 is not faster than fp32 on this machine ({device}): {tp:.2f}x the throughput at "
                         f"batch {big}, {lat:.2f}x the batch-1 speed")
    return "; ".join(notes) or None
