"""Benchmark pages built from the measured JSON files (artifacts/*/bench-*.json, artifacts/benchmarks/*.json), each
figure shown with the machine, the date and the load average it was measured under ("not recorded" where an older
file lacks one). Reports published as Markdown only are shown as written.

Pure functions returning Markdown; docs/gen_pages.py writes them into the site at build time."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, Optional

from gen_markdown import table

REPO = Path(__file__).resolve().parent.parent
NOT_RECORDED = "not recorded"


# --- cells -----------------------------------------------------------------------------------------------------

def rate(value: Optional[float]) -> str:
    return "" if value is None else f"{value:,.0f}"


def ms(value: Optional[float], digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def pct(value: Optional[float]) -> str:
    return "" if value is None else f"{value * 100:.2f}%"


def kib(size: Optional[int]) -> str:
    return "" if size is None else f"{size / 1024:,.0f} KiB"


def mib(size: Optional[int]) -> str:
    return "" if size is None else f"{size / 1024 ** 2:,.1f} MiB"


def ratio(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.2f}x"


# --- where and when --------------------------------------------------------------------------------------------

def provenance(data: dict[str, Any]) -> dict[str, str]:
    """Machine, date and load average of a result file: the record publish.py writes ("measured"), else the older
    top-level fields, else "not recorded"."""
    record = data.get("measured") if isinstance(data.get("measured"), dict) else {}
    load = record.get("load_average", data.get("load_average"))
    if isinstance(load, (list, tuple)):
        load = " / ".join(f"{v:.2f}" for v in load) + " (1 / 5 / 15 min)"
    elif isinstance(load, (int, float)):
        load = f"{load:.2f}"
    return {"machine": record.get("machine") or data.get("machine") or NOT_RECORDED,
            "date": record.get("date") or data.get("created") or NOT_RECORDED,
            "load": load or NOT_RECORDED}


def provenance_block(data: dict[str, Any], source: str, extra: str = "") -> str:
    where = provenance(data)
    lines = ['!!! info "Measured"', f"    - machine: {where['machine']}", f"    - date: {where['date']}",
             f"    - load average: {where['load']}", f"    - data: `{source}`"]
    if extra:
        lines.append(f"    - method: {extra}")
    return "\n".join(lines)


# --- per model: `edgecls bench NAME` ----------------------------------------------------------------------------

def bench_format_table(data: dict[str, Any]) -> str:
    sizes = [str(b) for b in data["batch_sizes"]]
    header = ["format", "device", "size", "test acc", "agreement"] + [f"img/s @{b}" for b in sizes] + [
        "p50 ms @1", "p99 ms @1", "peak RSS"]
    rows = []
    for r in data["rows"]:
        if r.get("error"):
            rows.append([r["label"], r["device"], "", "", ""] + [""] * len(sizes) + ["", "", f"not run: {r['error']}"])
            continue
        rows.append([r["label"], r["device"], kib(r.get("size_bytes")), pct(r.get("accuracy")), pct(r.get("agreement"))]
                    + [rate(r["throughput"].get(b)) for b in sizes]
                    + [ms(r.get("latency_p50_ms")), ms(r.get("latency_p99_ms")),
                       "" if r.get("peak_rss_mb") is None else f"{r['peak_rss_mb']:,.0f} MB"])
    return table(header, rows, "llrrr" + "r" * len(sizes) + "rrr")


def engines_table(section: dict[str, Any]) -> str:
    """edgecls and its peers in one process, taking turns (the head-to-head of `edgecls bench` and the int8 peers
    benchmark share this layout), then what each engine is."""
    rows = [[r["label"], kib(r.get("size_bytes")), pct(r.get("accuracy")), pct(r.get("agreement")),
             rate(r.get("throughput")), ms(r.get("latency_p50_ms")), ms(r.get("latency_p99_ms"))]
            for r in section["rows"] if not r.get("error")]
    notes = [f"- {r['label']}: " + (f"not run: {r['error']}" if r.get("error") else r.get("engine", ""))
             for r in section["rows"]]
    return table(["engine", "size", "test acc", "agreement", f"img/s @{section.get('batch', 256)}", "p50 ms @1",
                  "p99 ms @1"], rows, "lrrrrrr") + "\n\n" + "\n".join(notes)


RATIO_NAMES = {"int8_vs_tflite_int8": "edgecls int8 / TFLite int8", "int8_vs_fp32": "edgecls int8 / edgecls fp32",
               "fp32_vs_keras_onnx": "edgecls fp32 / Keras->ONNX fp32"}


def ratios_table(ratios: dict[str, Any]) -> str:
    rows = [[name, ratio(ratios[key].get("throughput")), ratio(ratios[key].get("latency_p50"))]
            for key, name in RATIO_NAMES.items() if key in ratios]
    return table(["ratio (> 1: the first is faster)", "throughput", "batch-1 speed"], rows, "lrr")


def model_bench_page(path: Path, data: dict[str, Any]) -> str:
    device = path.stem.removeprefix("bench-").upper().replace("-", " + ")
    out = [f"# {data['name']} on {device}", "",
           provenance_block(data, rel(path), f"{data.get('threads')} threads; {data.get('method', '')}"), "",
           f"Test images: {data.get('samples')} ({data.get('dataset', '')}). Each row in its own process.", "",
           bench_format_table(data), ""]
    if data.get("int8_note"):
        out += [data["int8_note"] + ".", ""]
    h2h = data.get("head_to_head")
    if h2h and h2h.get("rows"):
        out += ["## edgecls and its peers, taking turns", "", h2h.get("method", "") + ".", "", engines_table(h2h), ""]
        if h2h.get("ratios"):
            out += [ratios_table(h2h["ratios"]), ""]
    return "\n".join(out)


# --- int8 against its peers -------------------------------------------------------------------------------------

def peer_models(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: section for name, section in data.items() if isinstance(section, dict) and "rows" in section}


def _row(section: dict[str, Any], label: str) -> dict[str, Any]:
    return next((r for r in section["rows"] if r["label"] == label), {})


def peers_summary_table(data: dict[str, Any]) -> str:
    rows = []
    for name, s in peer_models(data).items():
        tfl, e8, e32, kx = (_row(s, k) for k in ("TFLite int8", "edgecls int8", "edgecls fp32", "Keras->ONNX fp32"))
        r = s.get("ratios", {})
        rows.append([name, rate(tfl.get("throughput")), rate(e8.get("throughput")), rate(e32.get("throughput")),
                     rate(kx.get("throughput")), ms(tfl.get("latency_p50_ms")), ms(e8.get("latency_p50_ms")),
                     ratio(r.get("int8_vs_tflite_int8", {}).get("throughput")),
                     ratio(r.get("int8_vs_tflite_int8", {}).get("latency_p50")),
                     ratio(r.get("fp32_vs_keras_onnx", {}).get("throughput"))])
    return table(["model", "TFLite int8 img/s", "edgecls int8 img/s", "edgecls fp32 img/s", "Keras->ONNX fp32 img/s",
                  "TFLite int8 p50 ms", "edgecls int8 p50 ms", "int8 / TFLite int8 (throughput)",
                  "int8 / TFLite int8 (batch 1)", "fp32 / Keras->ONNX (throughput)"], rows, "lrrrrrrrrr")


def peers_page(path: Path, data: dict[str, Any]) -> str:
    models = peer_models(data)
    first = next(iter(models.values()), {})
    out = ["# int8 against TensorFlow Lite and the other peers", "",
           provenance_block(data, rel(path), f"{first.get('threads')} threads; {first.get('method', '')}"), "",
           f"Every engine in one process, taking turns, on {first.get('samples')} test images per model, batch "
           f"{first.get('batch')}. TFLite int8: stock converter, full integer, XNNPACK, "
           f"{first.get('tflite_int8_io', '')}. Ratios above 1 mean edgecls is faster.", "",
           peers_summary_table(data), ""]
    for name, section in models.items():
        out += [f"## {name}", "", engines_table(section), ""]
    return "\n".join(out)


# --- browser and mobile -------------------------------------------------------------------------------------------

def web_table(data: dict[str, Any]) -> str:
    rows = [[r["model"], f"`{r['model_file']}` ({r['variant']})", kib(r.get("model_bytes")), mib(r.get("bundle_bytes")),
             mib(r.get("bundle_gzip_bytes")), ms(r.get("first_prediction_ms"), 0), ms(r.get("model_load_ms_p50"), 0),
             f"{ms(r.get('per_image_ms_p50'), 1)} / {ms(r.get('per_image_ms_p90'), 1)}", ms(r.get("inference_ms_p50"), 2),
             pct(r.get("top1_agreement")), f"{r['max_abs_diff']:.1e}"] for r in data["rows"]]
    return table(["model", "bundle model", "model size", "bundle", "bundle gzip", "first prediction ms",
                  "model load ms", "per image p50 / p90 ms", "inference p50 ms", "top-1 = Python",
                  "max abs diff vs Python"], rows, "llrrrrrrrrr")


def web_page(path: Path, data: dict[str, Any]) -> str:
    runtime = data["rows"][0].get("runtime", {}) if data.get("rows") else {}
    return "\n".join([
        "# In the browser: web bundles in headless Chromium", "",
        provenance_block(data, rel(path)), "",
        f"onnxruntime-web {runtime.get('onnxruntimeWeb', '')}, WASM, {runtime.get('numThreads', '')} thread(s); test "
        "images from a loopback server. *First prediction*: navigation start to the first label shown, empty cache. "
        "*Model load*: another session created in the same page (median). *Per image*: fetch, decode, JavaScript "
        "preprocessing and inference. The last two columns compare with the Python runtime on the same files.", "",
        web_table(data), ""])


def mobile_table(data: dict[str, Any]) -> str:
    rows = [[r["model"], f"`{r['file']}` ({r['variant']})", kib(r.get("ort_bytes")), kib(r.get("onnx_bytes")),
             f"{r['max_abs_diff']:.1e}", str(r.get("operators", "")), ms(r.get("load_onnx_ms"), 2),
             ms(r.get("load_ort_ms"), 2)] for r in data["rows"]]
    return table(["model", "file", "ORT size", "ONNX size", "max abs diff vs ONNX", "operators",
                  "session from .onnx ms", "session from .ort ms"], rows, "llrrrrrr")


def mobile_page(path: Path, data: dict[str, Any]) -> str:
    return "\n".join([
        "# Mobile: ORT-format exports", "", provenance_block(data, rel(path)), "",
        "Session creation with the Python onnxruntime wheel on the machine above (not a phone), median. *operators*: "
        "entries in `<name>.required_operators.config`, what a reduced onnxruntime build keeps.", "",
        mobile_table(data), ""])


# --- anything else with rows ------------------------------------------------------------------------------------

def generic_page(path: Path, data: Any) -> str:
    """A result file without its own layout here: its scalar fields and its rows, as they are."""
    out = [f"# {path.stem.replace('_', ' ')}", "", provenance_block(data if isinstance(data, dict) else {}, rel(path)), ""]
    rows = data.get("rows") if isinstance(data, dict) else data
    if isinstance(rows, list) and rows and isinstance(rows[0], dict):
        keys = [k for k in rows[0] if not isinstance(rows[0][k], (dict, list))]
        out += [table(keys, [[_cell(r.get(k)) for k in keys] for r in rows]), ""]
    return "\n".join(out)


def _cell(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else "" if value is None else str(value)


# --- the site section -----------------------------------------------------------------------------------------------

def rel(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


PAGES: dict[str, tuple[str, Callable[[Path, Any], str]]] = {  # result file name -> (page, builder)
    "int8_peers.json": ("int8-peers.md", peers_page),
    "web.json": ("web.md", web_page),
    "mobile.json": ("mobile.md", mobile_page),
}


def result_files(repo: Path = REPO) -> list[Path]:
    return sorted((repo / "artifacts").glob("*/bench-*.json")) + sorted((repo / "artifacts" / "benchmarks").glob("*.json"))


def page_for(path: Path) -> tuple[str, Callable[[Path, Any], str]]:
    if path.name.startswith("bench-"):
        return f"{path.parent.name}-{path.stem.removeprefix('bench-')}.md", model_bench_page
    return PAGES.get(path.name, (path.stem.replace("_", "-") + ".md", generic_page))


def overview_table(files: list[Path]) -> str:
    """One row per model benchmark: the figures a reader compares first, each with its machine and date."""
    rows = []
    for path in files:
        if not path.name.startswith("bench-"):
            continue
        data = json.loads(path.read_text())
        by_label = {r["label"]: r for r in data["rows"] if not r.get("error")}
        where = provenance(data)
        big = str(max(data["batch_sizes"]))
        keras, fp32, int8 = (by_label.get(k, {}) for k in ("Keras", "ONNX fp32", "ONNX int8"))
        rows.append([f"[{data['name']}]({page_for(path)[0]})", rate(keras.get("throughput", {}).get(big)),
                     rate(fp32.get("throughput", {}).get(big)), rate(int8.get("throughput", {}).get(big)),
                     ms(fp32.get("latency_p50_ms")), ms(int8.get("latency_p50_ms")),
                     f"{kib(int8.get('size_bytes'))} / {kib(fp32.get('size_bytes'))}",
                     f"{where['machine'].split(';')[0]}, {where['date'][:10]}, load {where['load']}"])
    return table(["model", "Keras img/s @256", "ONNX fp32 img/s @256", "ONNX int8 img/s @256", "fp32 p50 ms @1",
                  "int8 p50 ms @1", "int8 / fp32 size", "measured on"], rows, "lrrrrrrl")


def markdown_reports(repo: Path = REPO) -> list[Path]:
    """Results published as Markdown with no JSON beside them."""
    folder = repo / "artifacts" / "benchmarks"
    return [p for p in sorted(folder.glob("*.md")) if not p.with_suffix(".json").exists()]


def report_page(path: Path) -> str:
    """The report as published, plus a line for the date or load average it does not state."""
    text = path.read_text()
    missing = [what for what, pattern in (("Date", r"\d{4}-\d{2}-\d{2}"), ("Load average", r"load average"))
               if not re.search(pattern, text, re.IGNORECASE)]
    if missing:
        text = text.rstrip("\n") + "\n\n" + " ".join(f"{what}: {NOT_RECORDED}." for what in missing) + "\n"
    return text


def all_pages(repo: Path = REPO) -> dict[str, Any]:
    """`benchmarks/...` pages (str) and the images the published reports show (bytes)."""
    files = result_files(repo)
    pages: dict[str, Any] = {}
    links = []
    for path in files:
        page, build = page_for(path)
        data = json.loads(path.read_text())
        pages[f"benchmarks/{page}"] = build(path, data)
        title = pages[f"benchmarks/{page}"].splitlines()[0].lstrip("# ")
        links.append((page, title))
    reports = []
    for path in markdown_reports(repo):
        text = report_page(path)
        page = f"reports/{path.stem.replace('_', '-')}.md"
        pages[f"benchmarks/{page}"] = text
        reports.append((page, text.splitlines()[0].lstrip("# ")))
        for image in re.findall(r"\]\(([^)/]+\.png)\)", text):
            if (path.parent / image).exists():
                pages[f"benchmarks/reports/{image}"] = (path.parent / image).read_bytes()
    pages["benchmarks/index.md"] = "\n".join([
        "# Benchmarks", "",
        "Every page in this section is generated from the measured result files in `artifacts/` when the "
        "documentation is built; each figure comes with the machine, the date and the load average of its run. "
        "Re-measure with the command named on each page (`edgecls bench NAME`, or the scripts in "
        "`tests/benchmarks/`); the pages follow.", "",
        "## Per model, CPU", "", overview_table(files), "",
        "## Pages", ""] + [f"- [{title}]({page})" for page, title in links] + [""] + (
        ["## Published reports", "", "Results the benchmark scripts publish as Markdown, shown as written:", ""]
        + [f"- [{title}]({page})" for page, title in reports] + [""] if reports else []))
    pages["benchmarks/SUMMARY.md"] = "\n".join(
        ["- [Overview](index.md)"] + [f"- [{title}]({page})" for page, title in links]
        + (["- Published reports"] + [f"    - [{title}]({page})" for page, title in reports] if reports else [])) + "\n"
    return pages


if __name__ == "__main__":  # preview: python docs/gen_benchmarks.py PAGE
    import sys

    print(all_pages()[sys.argv[1] if len(sys.argv) > 1 else "benchmarks/index.md"])
