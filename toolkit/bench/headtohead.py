"""edgecls against its peers on one model, in one process, interleaved: accuracy, batch-1 latency,
batch-N throughput, and edgecls / best-peer ratios.

Run as a worker so TensorFlow never loads into the CLI process:
    python -m edgecls.bench.headtohead '{"keras": "...", "files": {...}, "data": "x.npz", ...}'
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from . import interleaved
from .engines import TFLITE_INT8_IO, build_engines


@dataclass(frozen=True)
class HeadToHeadConfig:
    threads: int = os.cpu_count() or 1
    batch: int = 256
    rounds: int = 5  # turns each engine takes
    window_s: float = 0.4  # per turn, throughput
    latency_calls: int = 200  # per turn, batch 1
    spin: bool = True  # edgecls sessions' idle threads busy-wait (Classifier's default)
    settle_s: float = interleaved.SETTLE_S  # pause before each turn: the previous engine's spinning threads go idle


def _scores(predict, x: np.ndarray) -> np.ndarray:
    return np.concatenate([predict(np.ascontiguousarray(x[i : i + 256])) for i in range(0, len(x), 256)])


def ratios(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """edgecls's best variant vs the best peer: throughput (higher is better) and batch-1 p50 (lower is better);
    > 1 means edgecls is faster. Also int8 vs fp32 within edgecls, and each edgecls int8 vs TFLite int8."""
    ok = [r for r in rows if not r.get("error")]
    peers = [r for r in ok if r["kind"] == "peer"]
    ours = [r for r in ok if r["kind"] == "edgecls"]
    out: dict[str, Any] = {}
    if peers and ours:
        best_peer_tp = max(peers, key=lambda r: r["throughput"])
        best_ours_tp = max(ours, key=lambda r: r["throughput"])
        best_peer_lat = min(peers, key=lambda r: r["latency_p50_ms"])
        best_ours_lat = min(ours, key=lambda r: r["latency_p50_ms"])
        out["throughput"] = {"edgecls": best_ours_tp["label"], "peer": best_peer_tp["label"],
                             "ratio": best_ours_tp["throughput"] / best_peer_tp["throughput"]}
        out["latency_p50"] = {"edgecls": best_ours_lat["label"], "peer": best_peer_lat["label"],
                              "ratio": best_peer_lat["latency_p50_ms"] / best_ours_lat["latency_p50_ms"]}
    by_label = {r["label"]: r for r in ok}
    pairs = {"int8_vs_tflite_int8": ("edgecls int8", "TFLite int8"), "int8_vs_fp32": ("edgecls int8", "edgecls fp32"),
             "fp32_vs_keras_onnx": ("edgecls fp32", "Keras->ONNX fp32")}
    for key, (a, b) in pairs.items():
        if a in by_label and b in by_label:
            out[key] = {"throughput": by_label[a]["throughput"] / by_label[b]["throughput"],
                        "latency_p50": by_label[b]["latency_p50_ms"] / by_label[a]["latency_p50_ms"]}
    return out


def run(keras_path: Optional[Path], files: dict[str, Path], x: np.ndarray, y: Optional[np.ndarray],
        calibration: Optional[np.ndarray], cfg: HeadToHeadConfig) -> dict[str, Any]:
    """x: uint8 (N,H,W,C) model-ready pixels; calibration: uint8 training pixels for TFLite int8."""
    errors: list[dict[str, Any]] = []
    engines = build_engines(keras_path, files, cfg.threads, calibration,
                            lambda label, reason: errors.append({"label": label, "error": reason}), cfg.spin)
    rows: list[dict[str, Any]] = []
    reference = None
    for engine in engines:
        pred = _scores(engine.predict, x).argmax(1)
        if engine.label == "Keras":
            reference = pred
        rows.append({"label": engine.label, "kind": engine.kind, "variant": engine.variant,
                     "size_bytes": engine.size_bytes, "engine": engine.detail, "error": None,
                     "accuracy": float((pred == y).mean()) if y is not None else None,
                     "agreement": float((pred == reference).mean()) if reference is not None else None})
    predicts = {e.label: e.predict for e in engines}
    if predicts:
        rates = interleaved.throughput(predicts, x, cfg.batch, cfg.rounds, cfg.window_s, cfg.settle_s)
        lat = interleaved.latency(predicts, x, cfg.rounds, cfg.latency_calls, cfg.settle_s)
        for row in rows:
            row["throughput"] = rates[row["label"]]
            row["latency_p50_ms"], row["latency_p99_ms"] = lat[row["label"]]
    rows.extend(errors)
    return {"threads": cfg.threads, "batch": cfg.batch, "samples": int(len(x)), "tflite_int8_io": TFLITE_INT8_IO,
            "method": f"one process, engines taking turns: {cfg.rounds} turns of >= {cfg.window_s}s at batch "
                      f"{cfg.batch} (median), {cfg.rounds} turns of {cfg.latency_calls} batch-1 calls (p50/p99 of all), "
                      f"each turn after a {cfg.settle_s:g} s pause (spinning threads of the previous engine idle)",
            "rows": rows, "ratios": ratios(rows)}


def ratio_lines(report: dict[str, Any]) -> list[str]:
    """Plain sentences: edgecls / best peer, and whether int8 is faster than fp32 here."""
    r = report.get("ratios", {})
    lines = []
    if "throughput" in r:
        t, p = r["throughput"], r["latency_p50"]
        lines.append(f"edgecls / best peer: throughput {t['ratio']:.2f}x ({t['edgecls']} vs {t['peer']}), "
                     f"batch-1 speed {p['ratio']:.2f}x ({p['edgecls']} vs {p['peer']}); > 1 means edgecls is faster")
    if "int8_vs_tflite_int8" in r:
        q = r["int8_vs_tflite_int8"]
        lines.append(f"edgecls int8 / TFLite int8: throughput {q['throughput']:.2f}x, batch-1 speed {q['latency_p50']:.2f}x")
    if "int8_vs_fp32" in r:
        q = r["int8_vs_fp32"]
        if q["throughput"] < 1 or q["latency_p50"] < 1:
            lines.append(f"int8 is not faster than fp32 on this machine: throughput {q['throughput']:.2f}x, "
                         f"batch-1 speed {q['latency_p50']:.2f}x of fp32")
    return lines


def main() -> None:
    args = json.loads(sys.argv[1])
    data = np.load(args["data"], allow_pickle=False)
    cfg = HeadToHeadConfig(**args.get("config", {}))
    report = run(Path(args["keras"]) if args.get("keras") else None, {k: Path(v) for k, v in args["files"].items()},
                 data["x"], data["y"] if "y" in data else None, data["calib"] if "calib" in data else None, cfg)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
