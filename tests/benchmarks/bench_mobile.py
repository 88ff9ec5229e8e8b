"""`edgecls export --mobile` for the shipped models: ORT-format sizes, the operators a reduced build must
keep, and session-creation time of .ort vs .onnx with onnxruntime (Python, this CPU).

    python tests/benchmarks/bench_mobile.py [--repeats 20] [--out artifacts/benchmarks/mobile.md]

What is measured here: file sizes, operator lists, load times on this x86 machine. What is not: the size
of a reduced onnxruntime build for ARM (that needs an Android NDK / Xcode build from source)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from edgecls.exporters.web import export_mobile
from edgecls.machine import describe_machine
from publish import publish  # noqa: E402  (tests/benchmarks/publish.py)

REPO = Path(__file__).resolve().parents[2]
SHIPPED = ("mnist", "fashion", "cifar10", "emotion")


def load_ms(path: Path, repeats: int) -> float:
    import onnxruntime as ort

    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--out", type=Path, default=REPO / "artifacts" / "benchmarks" / "mobile.md")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in SHIPPED:
            folder = REPO / "artifacts" / name
            models = [folder / f"{name}.onnx"] + [p for p in [folder / f"{name}.int8.onnx"] if p.is_file()]
            result = export_mobile(models, Path(tmp) / name)
            for onnx_path in models:
                ort_name = onnx_path.name[: -len(".onnx")] + ".ort"
                row = result.models[ort_name]
                rows.append({"model": name, "file": ort_name, "variant": row["variant"],
                             "ort_bytes": row["size_bytes"], "onnx_bytes": row["onnx_size_bytes"],
                             "max_abs_diff": row["max_abs_diff"], "operators": len(result.operators),
                             "operator_list": result.operators,
                             "load_onnx_ms": load_ms(onnx_path, args.repeats),
                             "load_ort_ms": load_ms(Path(tmp) / name / ort_name, args.repeats)})
                print(json.dumps({k: v for k, v in rows[-1].items() if k != "operator_list"}))
    machine = describe_machine()
    load = os.getloadavg()[0]  # the machine may be shared: say how busy it was rather than assume
    lines = ["# Mobile (ORT format) exports of the shipped models", "",
             f"Measured by `python tests/benchmarks/bench_mobile.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
             f"{machine}. Session creation is the median of {args.repeats}, on this x86 CPU with the Python wheel "
             f"(not a phone); load average {load:.1f} when it finished. *operators*: entries in the model's "
             "`<name>.required_operators.config` (fp32 and int8 together), what a reduced build keeps.", "",
             "| model | file | ORT size | ONNX size | max abs diff vs ONNX | operators (both variants) | load .onnx | load .ort |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| `{r['model']}` | `{r['file']}` | {r['ort_bytes'] / 1024:,.0f} KiB | {r['onnx_bytes'] / 1024:,.0f} KiB | "
                     f"{r['max_abs_diff']:.1e} | {r['operators']} | {r['load_onnx_ms']:.1f} ms | {r['load_ort_ms']:.1f} ms |")
    publish(args.out, "\n".join(lines), {"machine": machine, "rows": rows})


if __name__ == "__main__":
    main()
