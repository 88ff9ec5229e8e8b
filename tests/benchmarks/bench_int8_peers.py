"""edgecls int8 vs TensorFlow Lite full-int8 (and the other peers) on the four shipped models.

    EDGECLS_DATA=/work/shared/datasets python tests/benchmarks/bench_int8_peers.py [--models mnist,...] [--quick]

Each model runs in its own process (TensorFlow + onnxruntime + TFLite loaded once there), the engines taking
turns (toolkit/bench/interleaved.py), so the ratios hold on a machine whose speed drifts. Accuracy is on
2,000 test images through the model's declared preprocessing; TFLite int8 is calibrated on 512 training images
(the same preprocessing). Writes artifacts/benchmarks/int8_peers.md (+ .json) and prints the goal table.
Bounded: about a minute per model with the defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from publish import publish  # noqa: E402  (tests/benchmarks/publish.py)

REPO = Path(__file__).resolve().parents[2]
MODELS = ("mnist", "fashion", "cifar10", "emotion")


def model_data(name: str, samples: int, seed: int = 1337) -> dict[str, np.ndarray]:
    from edgecls.data import load_dataset
    from edgecls.data.types import limit_split, preprocess_split
    from edgecls.data.plan import declared_pipeline
    from edgecls.runtime.spec import InputSpec

    card = json.loads((REPO / "artifacts" / name / "metrics.json").read_text())
    ds = load_dataset(card["dataset"])
    spec, pipeline = InputSpec.from_dict(card["input_spec"]), declared_pipeline(name, card, None)
    test = preprocess_split(limit_split(ds.test, samples, seed), spec, pipeline)
    calib = preprocess_split(limit_split(ds.train, 512, seed), spec, pipeline)
    return {"x": test.x, "y": test.y, "calib": calib.x}


def run_model(name: str, samples: int, config: dict) -> dict:
    folder = REPO / "artifacts" / name
    files = {v: folder / f"{name}{s}" for v, s in (("fp32", ".onnx"), ("fp16", ".fp16.onnx"), ("int8", ".int8.onnx"))}
    files = {v: str(p) for v, p in files.items() if p.is_file() and v != "fp16"}  # fp16 is for GPUs
    with tempfile.TemporaryDirectory(prefix="edgecls-peers-") as tmp:
        data = Path(tmp) / "data.npz"
        np.savez(data, **model_data(name, samples))
        args = {"keras": str(folder / "model.keras"), "files": files, "data": str(data), "config": config}
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
        proc = subprocess.run([sys.executable, "-m", "edgecls.bench.headtohead", json.dumps(args)],
                              capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"{name}: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def goal_table(results: dict[str, dict]) -> list[str]:
    head = ["model", "TFLite int8 b256", "edgecls int8 b256", "edgecls fp32 b256", "TFLite int8 b1 p50",
            "edgecls int8 b1 p50", "Keras->ONNX fp32 b256", "int8 / TFLite int8 (b256, b1)",
            "fp32 / Keras->ONNX (b256, b1)", "goal met"]
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 2) + " --- |"]
    for name, rep in results.items():
        rows = {r["label"]: r for r in rep["rows"] if not r.get("error")}

        def tp(label: str) -> str:
            return f"{rows[label]['throughput']:,.0f}" if label in rows else "n/a"

        def p50(label: str) -> str:
            return f"{rows[label]['latency_p50_ms'] * 1000:.1f} us" if label in rows else "n/a"

        r = rep["ratios"]
        q, f = r.get("int8_vs_tflite_int8"), r.get("fp32_vs_keras_onnx")
        met = bool(q and f and q["throughput"] >= 1 and q["latency_p50"] >= 1 and f["throughput"] >= 1)
        lines.append("| " + " | ".join([
            name, tp("TFLite int8"), tp("edgecls int8"), tp("edgecls fp32"), p50("TFLite int8"), p50("edgecls int8"),
            tp("Keras->ONNX fp32"),
            f"{q['throughput']:.2f}x, {q['latency_p50']:.2f}x" if q else "n/a",
            f"{f['throughput']:.2f}x, {f['latency_p50']:.2f}x" if f else "n/a", "yes" if met else "no"]) + " |")
    return lines


def full_table(name: str, rep: dict) -> list[str]:
    lines = [f"### {name}", "", "| engine | size | test acc | agree w/ Keras | img/s @256 | p50 us @1 | p99 us @1 |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rep["rows"]:
        if r.get("error"):
            lines.append(f"| {r['label']} | could not run: {r['error']} | | | | | |")
            continue
        agree = f"{r['agreement'] * 100:.2f}%" if r.get("agreement") is not None else "n/a"
        lines.append(f"| {r['label']} | {r['size_bytes'] / 1024:,.0f} KiB | {r['accuracy'] * 100:.2f}% | {agree} | "
                     f"{r['throughput']:,.0f} | {r['latency_p50_ms'] * 1000:.1f} | {r['latency_p99_ms'] * 1000:.1f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--quick", action="store_true", help="3 short turns per engine (a smoke run)")
    parser.add_argument("--no-spin", action="store_true",
                        help="edgecls sessions' idle threads do not busy-wait (Classifier(spin=False))")
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "benchmarks" / "int8_peers.md")
    args = parser.parse_args()
    # many short turns: load from other processes changes within seconds, and short turns spread it evenly
    config = {"threads": args.threads, "rounds": 3 if args.quick else 15, "window_s": 0.15,
              "latency_calls": 100, "spin": not args.no_spin}
    from edgecls.machine import cpu_name, describe_machine

    results = {}
    for name in args.models.split(","):
        results[name] = run_model(name, args.samples, config)
        print(f"{name}: " + "; ".join(f"{r['label']} {r.get('throughput', 0):,.0f} img/s, "
                                       f"{r.get('latency_p50_ms', 0) * 1000:.1f} us" for r in results[name]["rows"]
                                       if not r.get("error")), flush=True)
    any_rep = next(iter(results.values()))
    flags = [f for f in ("avx512_vnni", "amx_int8", "avx_vnni") if f in open("/proc/cpuinfo").read()] \
        if Path("/proc/cpuinfo").exists() else []
    header = ["# edgecls int8 vs TensorFlow Lite int8 and the other peers", "",
              f"{cpu_name()} ({', '.join(flags) or 'no VNNI/AMX'}), {args.threads} threads; {describe_machine()}. "
              f"{any_rep['method']}. {args.samples} test images per model. TFLite int8: stock converter, full-integer, "
              f"XNNPACK, {any_rep['tflite_int8_io']}, 512 training images as representative data. edgecls rows: "
              f"`Classifier.run` on uint8 batches. Ratios > 1 mean edgecls is faster. Measured "
              f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} with "
              f"`python tests/benchmarks/bench_int8_peers.py{' --quick' if args.quick else ''}"
              f"{' --no-spin' if args.no_spin else ''}`. edgecls sessions: idle threads "
              f"{'do not spin' if args.no_spin else 'spin (the Classifier default)'}.", ""]
    text = "\n".join(header + goal_table(results) + [""] +
                     sum((full_table(n, r) + [""] for n, r in results.items()), []))
    publish(args.out, text, results)


if __name__ == "__main__":
    main()
