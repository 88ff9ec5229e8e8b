"""The web bundles in headless Chromium (WASM): first-prediction time, per-image time, sizes.

    python tests/benchmarks/bench_web.py [--images 50] [--out artifacts/benchmarks/web.md]

For each shipped model, the default bundle (int8 where it passed its gate) and the fp32 one are built with
`edgecls.exporters.web.build_web_bundle` and served from a loopback static server; a fresh Chromium page
(empty cache, Cache-Control: no-store) opens `index.html?image=...`. Measured in the page:
- first prediction: navigation start -> the first label shown (fetching and compiling the 14 MB WASM
  runtime from loopback, creating the session, decoding, preprocessing, inference);
- per image: `classifyUrl` on N test images (fetch + decode + preprocessing + inference), median and p90,
  and inference alone (`session.run` on prepared pixels), median.
WASM threads need cross-origin isolation (COOP/COEP headers); the page is served with them so
onnxruntime-web may use its default thread count (half the cores, at most 4). Not a test: figures are
printed and written, not asserted.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/browser.py
from browser import chromium, chromium_path, static_server  # noqa: E402

from edgecls.data import load_dataset  # noqa: E402
from edgecls.exporters.web import build_web_bundle  # noqa: E402
from edgecls.exporters.web.bundle import pick_variant, read_info  # noqa: E402
from edgecls.exporters.web.runtime_files import VERSION, ensure_runtime  # noqa: E402
from edgecls.machine import describe_machine  # noqa: E402
from edgecls.runtime import Classifier  # noqa: E402
from publish import publish  # noqa: E402  (tests/benchmarks/publish.py)

REPO = Path(__file__).resolve().parents[2]
SHIPPED = ("mnist", "fashion", "cifar10", "emotion")

MEASURE = """async (urls) => {
  const c = window.edgecls, times = [], infer = [], probabilities = [];
  for (const url of urls) {
    const t = performance.now();
    const r = await c.classifyUrl(url);
    times.push(performance.now() - t);
    probabilities.push(r.probabilities);
    const u = performance.now();
    await c.run(r.pixels);
    infer.push(performance.now() - u);
  }
  const ort = await import('./ort/ort.wasm.min.mjs'), reload = [];
  for (let i = 0; i < 5; i++) {  // the model alone: the WASM runtime is already compiled
    const t = performance.now();
    const s = await ort.InferenceSession.create(c.meta.model_file);
    reload.push(performance.now() - t);
    await s.release();
  }
  return {times, infer, probabilities, reload, runtime: c.runtime, loadMs: c.loadMs};
}"""


def gzip_size(folder: Path) -> int:
    return sum(len(gzip.compress(p.read_bytes(), 6)) for p in folder.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=50)
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=REPO / "artifacts" / "benchmarks" / "web.md")
    args = ap.parse_args()
    import os

    data_dir = args.data_dir or Path(os.environ.get("EDGECLS_DATA", REPO.parent / "shared" / "datasets"))
    executable = chromium_path()
    if executable is None:
        sys.exit("chromium is not installed (apt-get install -y chromium)")
    runtime = ensure_runtime(log=print)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        root = Path(tmp)
        urls = {}
        for name in SHIPPED:
            fp32 = REPO / "artifacts" / name / f"{name}.onnx"
            test = load_dataset(read_info(fp32).dataset, data_dir).test
            folder = root / "images" / name
            folder.mkdir(parents=True)
            urls[name] = []
            for i in range(args.images):
                px = test.x[i]
                Image.fromarray(px[..., 0] if px.shape[-1] == 1 else px).save(folder / f"{i}.png")
                urls[name].append(f"images/{name}/{i}.png")
            for variant, fmt in (("auto", "onnx"), ("auto", "ort"), ("fp32", "onnx")):
                model = pick_variant(fp32, variant)
                bundle = build_web_bundle(model, root / f"{name}-{variant}-{fmt}", runtime_dir=runtime,
                                          model_format=fmt)
                rows.append({"model": name, "bundle": f"{name}-{variant}-{fmt}", "variant": bundle.variant,
                             "model_file": bundle.model_file, "model_bytes": bundle.model_bytes,
                             "bundle_bytes": bundle.total_bytes, "bundle_gzip_bytes": gzip_size(bundle.folder)})
        with static_server(root, isolated=True) as url:
            for row in rows:
                with chromium(root / f"profile-{row['bundle']}", executable) as context:
                    page = context.new_page()
                    first_url = f"{url}/{row['bundle']}/index.html?image=../{urls[row['model']][0]}"
                    started = time.perf_counter()
                    page.goto(first_url)
                    page.wait_for_function("document.getElementById('result').dataset.state === 'done'",
                                           timeout=120_000)
                    row["first_prediction_ms"] = float(page.get_attribute("#result", "data-first-ms"))
                    row["first_prediction_wall_ms"] = (time.perf_counter() - started) * 1000
                    m = page.evaluate(MEASURE, [f"{url}/{u}" for u in urls[row["model"]]])
                    times, infer = np.array(m["times"]), np.array(m["infer"])
                    web_p = np.array(m["probabilities"])
                    onnx_file = row["model_file"].replace(".ort", ".onnx")
                    clf = Classifier(REPO / "artifacts" / row["model"] / onnx_file)
                    py_p = clf.run(clf.load_many([root / u for u in urls[row["model"]]]))
                    row.update(top1_agreement=float((web_p.argmax(1) == py_p.argmax(1)).mean()),
                               max_abs_diff=float(np.abs(web_p - py_p).max()))
                    row.update(session_create_ms=m["loadMs"], model_load_ms_p50=float(np.median(m["reload"])),
                               per_image_ms_p50=float(np.median(times)),
                               per_image_ms_p90=float(np.percentile(times, 90)),
                               inference_ms_p50=float(np.median(infer)), runtime=m["runtime"])
                    print(json.dumps(row))
    write(rows, args)


def write(rows: list[dict], args) -> None:
    machine = describe_machine()
    load = os.getloadavg()[0]  # the machine may be shared: say how busy it was rather than assume
    runtime = rows[0]["runtime"]
    lines = [
        "# Web bundles in headless Chromium (onnxruntime-web, WASM)",
        "",
        f"Measured by `python tests/benchmarks/bench_web.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
        f"{machine}; Debian chromium, headless; onnxruntime-web {VERSION}, WASM SIMD, "
        f"{runtime.get('numThreads')} thread(s) (cross-origin isolated: {runtime.get('crossOriginIsolated')}); "
        f"{args.images} test images per model, loopback static server. Measured once; load average "
        f"{load:.1f} when it finished (the browser and the bench share the cores).",
        "",
        "- *first prediction*: navigation start to the first label on the page (`index.html?image=...`, empty cache:",
        "  fetch + compile the WASM runtime, create the session, decode, preprocess, infer).",
        "- *per image*: `classifyUrl` (fetch + decode + preprocessing in JavaScript + inference), median / p90;",
        "  *inference*: `session.run` alone, median.",
        "- *model load*: creating another session in the same page (WASM runtime already compiled), median of 5:",
        "  what the model's file format changes (`.onnx` vs pre-optimised `.ort`, `--web-format ort`).",
        "- *bundle*: every file in the folder (the WASM runtime is 13.6 MiB of it); *gzip*: what a compressing",
        "  static host sends.",
        "",
        "- *= Python*: top-1 agreement with `Classifier.predict` on the same files, and the largest probability",
        "  difference (the Chromium test asserts 100% and < 1e-3 for fp32).",
        "",
        "| model | bundle model | model size | bundle | bundle gzip | first prediction | model load | per image p50 / p90 | inference p50 | = Python (top-1, max abs diff) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(f"| `{r['model']}` | `{r['model_file']}` ({r['variant']}) | {r['model_bytes'] / 1024:,.0f} KiB | "
                     f"{r['bundle_bytes'] / 2**20:.1f} MiB | {r['bundle_gzip_bytes'] / 2**20:.1f} MiB | "
                     f"{r['first_prediction_ms']:,.0f} ms | {r['model_load_ms_p50']:,.0f} ms | {r['per_image_ms_p50']:.1f} / {r['per_image_ms_p90']:.1f} ms | "
                     f"{r['inference_ms_p50']:.2f} ms | {r['top1_agreement'] * 100:.0f}%, {r['max_abs_diff']:.1e} |")
    publish(args.out, "\n".join(lines), {"machine": machine, "rows": rows})


if __name__ == "__main__":
    main()
