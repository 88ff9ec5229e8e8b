"""Runtime speed benchmark: measured figures and ratios against baselines run in the same session.

    python tests/benchmarks/bench_runtime.py [--data-dir DIR] [--out artifacts/benchmarks/runtime.md]

Measures (issue targets in brackets):
  1. in-memory throughput, shipped mnist int8 at batch 256              [>= 70,000 img/s on 2 cores]
     and batch-1 latency p50/p99                                        [<= 50 us]
  2. `edgecls infer` over a folder of 10,000 MNIST PNGs, whole process  [>= 15,000 img/s]
     vs a plain batched Keras script (PIL decode + model.predict)       [>= 3x]
  3. `import edgecls.runtime` time and RSS                              [<= 0.35 s, <= 80 MB]
     `edgecls infer --help` wall time                                   [<= 0.5 s]
Each subprocess-timed figure is the median of several runs. Not a test: timings are reported, not asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edgecls.machine import describe_machine
from publish import publish  # noqa: E402  (tests/benchmarks/publish.py)

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable


def wall(cmd: list[str], runs: int = 3, env: dict | None = None) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, **(env or {})})
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_in_memory(x: np.ndarray) -> dict[str, float]:
    from edgecls.runtime.classifier import Classifier
    from edgecls.runtime.timing import call_times, window_rate

    out: dict[str, float] = {}
    for variant in ("int8", "fp32"):
        clf = Classifier("mnist", variant=variant, device="cpu", threads=os.cpu_count())
        batch = x[:256]
        for _ in range(20):
            clf.run(batch)
        out[f"{variant}_b256_img_s"] = statistics.median(window_rate(clf.run, batch, items=len(batch), window_s=1.0)
                                                         for _ in range(5))
        one = x[:1]
        for _ in range(200):
            clf.run(one)
        lat = [t * 1e6 for t in call_times(clf.run, [(one,)], 3000)]
        out[f"{variant}_b1_p50_us"] = float(np.percentile(lat, 50))
        out[f"{variant}_b1_p99_us"] = float(np.percentile(lat, 99))
    return out


KERAS_IN_MEMORY = textwrap.dedent("""
    import os, sys, time; os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np, keras
    m = keras.saving.load_model(sys.argv[1], compile=False)
    x = np.load(sys.argv[2])["x_test"][:256, ..., None].astype("float32")
    for _ in range(5): m.predict_on_batch(x)
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < 3: m.predict_on_batch(x); n += 256
    print(n / (time.perf_counter() - t))
""")

KERAS_FOLDER = textwrap.dedent("""
    # The plain batched Keras script a user would write: PIL decode + model.predict.
    import os, sys; os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np, keras
    from PIL import Image
    model = keras.saving.load_model(sys.argv[1], compile=False)
    files = sorted(os.path.join(sys.argv[2], f) for f in os.listdir(sys.argv[2]))
    for i in range(0, len(files), 256):
        batch = np.stack([np.asarray(Image.open(f).convert("L"), dtype=np.float32)[..., None] for f in files[i:i + 256]])
        probs = model.predict(batch, verbose=0)
        for f, p in zip(files[i:i + 256], probs.argmax(1)):
            pass
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("EDGECLS_DATA", str(REPO.parent / "shared" / "datasets")))
    parser.add_argument("--out", default=str(REPO / "artifacts" / "benchmarks" / "runtime.md"))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    npz = Path(args.data_dir) / "mnist.npz"
    x = np.load(npz)["x_test"][..., None]
    keras_model = REPO / "artifacts" / "mnist" / "model.keras"
    edgecls = [PY, "-m", "edgecls"]

    r: dict[str, float] = {}
    r.update(bench_in_memory(x))
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(KERAS_IN_MEMORY)
    r["keras_b256_img_s"] = float(subprocess.run([PY, fh.name, str(keras_model), str(npz)], check=True,
                                                 capture_output=True, text=True).stdout.strip().splitlines()[-1])

    with tempfile.TemporaryDirectory(prefix="edgecls-bench-") as tmp:
        from PIL import Image

        folder = Path(tmp) / "png"
        folder.mkdir()
        for i in range(10000):
            Image.fromarray(x[i, ..., 0]).save(folder / f"{i:05d}.png")
        preds = Path(tmp) / "preds.csv"
        r["infer_folder_s"] = wall(edgecls + ["infer", str(folder), "--int8", "-o", str(preds)], args.runs)
        r["infer_folder_img_s"] = 10000 / r["infer_folder_s"]
        script = Path(tmp) / "keras_folder.py"
        script.write_text(KERAS_FOLDER)
        r["keras_folder_s"] = wall([PY, str(script), str(keras_model), str(folder)], args.runs)
        r["keras_folder_img_s"] = 10000 / r["keras_folder_s"]

    r["python_startup_s"] = wall([PY, "-c", "pass"], 5)
    # Peak RSS from /proc (VmHWM): ru_maxrss would report the benchmark parent's peak, since Linux
    # carries it across fork+exec.
    probe = ("import time; t = time.perf_counter(); import edgecls.runtime; "
             "from edgecls.runtime.classifier import Classifier; dt = time.perf_counter() - t; "
             "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]; "
             "print(dt, int(hwm) / 1024)")
    samples = [subprocess.run([PY, "-c", probe], check=True, capture_output=True, text=True).stdout.split()
               for _ in range(5)]
    r["import_runtime_s"] = statistics.median(float(s[0]) for s in samples)
    r["import_runtime_rss_mb"] = statistics.median(float(s[1]) for s in samples)
    r["infer_help_s"] = wall(edgecls + ["infer", "--help"], 5)

    rows = [
        ("in-memory, mnist int8, batch 256", f"{r['int8_b256_img_s']:,.0f} img/s", ">= 70,000 img/s",
         f"{r['int8_b256_img_s'] / r['keras_b256_img_s']:.1f}x Keras predict_on_batch ({r['keras_b256_img_s']:,.0f} img/s)"),
        ("in-memory, mnist fp32, batch 256", f"{r['fp32_b256_img_s']:,.0f} img/s", "",
         f"int8 / fp32 = {r['int8_b256_img_s'] / r['fp32_b256_img_s']:.2f}"),
        ("batch-1 latency, mnist int8", f"p50 {r['int8_b1_p50_us']:.0f} us, p99 {r['int8_b1_p99_us']:.0f} us",
         "<= 50 us", f"fp32 p50 {r['fp32_b1_p50_us']:.0f} us"),
        ("`edgecls infer` 10,000 PNGs, whole process", f"{r['infer_folder_img_s']:,.0f} img/s ({r['infer_folder_s']:.2f} s)",
         ">= 15,000 img/s", f"{r['infer_folder_img_s'] / r['keras_folder_img_s']:.1f}x plain Keras script "
         f"({r['keras_folder_img_s']:,.0f} img/s, {r['keras_folder_s']:.2f} s)"),
        ("`import edgecls.runtime` (+Classifier)", f"{r['import_runtime_s']:.3f} s, {r['import_runtime_rss_mb']:.0f} MB RSS",
         "<= 0.35 s, <= 80 MB", f"bare python start {r['python_startup_s']:.3f} s"),
        ("`edgecls infer --help`, whole process", f"{r['infer_help_s']:.3f} s", "<= 0.5 s", ""),
    ]
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# Runtime benchmark", "", f"Measured {stamp} by `tests/benchmarks/bench_runtime.py` on: {describe_machine()}.", "",
             "| measurement | result | target | baseline (same session) |", "| --- | --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    publish(Path(args.out), "\n".join(lines))


if __name__ == "__main__":
    main()
