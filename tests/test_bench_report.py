"""`edgecls bench` and `edgecls report`: result structure (not timings), valid pages, correct figure data."""

from __future__ import annotations

import base64
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from edgecls.report.data import normalized_confusion, sample_grid, worst_mistakes

REPO = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_worst_mistakes_known_case():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6], [0.05, 0.95]])
    labels = np.array([0, 0, 1, 1, 0])  # wrong: #1 (0.8), #2 (0.7), #4 (0.95)
    got = worst_mistakes(probs, labels, 2)
    assert [(m.index, m.true, m.predicted) for m in got] == [(4, 0, 1), (1, 0, 1)]
    assert got[0].confidence == pytest.approx(0.95)
    assert worst_mistakes(probs[:1], labels[:1], 5) == []


def test_normalized_confusion_known_case():
    cm = normalized_confusion(np.array([0, 0, 0, 1, 2, 2]), np.array([0, 0, 1, 1, 2, 0]), 4)
    assert cm[0].tolist() == pytest.approx([2 / 3, 1 / 3, 0, 0])
    assert cm[2].tolist() == pytest.approx([0.5, 0, 0.5, 0])
    assert cm[3].tolist() == [0, 0, 0, 0]  # a class with no samples stays zero, not NaN


def test_sample_grid_takes_each_class():
    labels = np.repeat(np.arange(5), 10)
    idx = sample_grid(labels, per_class=3)
    assert np.bincount(labels[idx]).tolist() == [3] * 5 and len(set(idx.tolist())) == 15


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.headings: list[str] = []
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        self._in_h2 = tag == "h2"

    def handle_data(self, data):
        if self._in_h2:
            self.headings.append(data)
            self._in_h2 = False


@pytest.mark.slow
def test_report_page_is_valid_and_self_contained(tmp_path, data_dir):
    from edgecls.report.build import build_report

    shutil.copytree(REPO / "artifacts" / "mnist", tmp_path / "mnist",
                    ignore=shutil.ignore_patterns("figures", "report.html", ".train"))
    path = build_report("mnist", workspace=tmp_path, data_dir=data_dir)
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    parser = _Collector()
    parser.feed(text)
    assert {"Summary", "Training curves", "Confusion matrices", "Per-class precision, recall, F1"} <= set(parser.headings)
    assert parser.images and all(src.startswith("data:image/png;base64,") for src in parser.images)
    for src in parser.images:
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)
    pngs = list((tmp_path / "mnist" / "figures").glob("*.png"))
    assert {p.stem for p in pngs} >= {"training_curves", "confusion_keras", "confusion_onnx_int8", "per_class",
                                       "predictions", "worst_mistakes"}
    assert all(p.stat().st_size > 5000 and p.read_bytes().startswith(PNG_MAGIC) for p in pngs)
    card = json.loads((tmp_path / "mnist" / "metrics.json").read_text())
    assert f"{card['test']['accuracy'] * 100:.2f}%" in text  # the page reports the recorded accuracy


@pytest.mark.slow
def test_bench_runner_on_a_tiny_model(tmp_path, mnist):
    import keras

    from edgecls.bench.runner import BenchConfig, Row, markdown, outcomes_to_json, plan_rows, run_bench
    from edgecls.exporters.export import ExportJob, run_export
    from edgecls.exporters.validate import EvalData

    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    model.save(tmp_path / "tiny.keras")
    run_export(ExportJob(model=model, name="tiny", labels=tuple("0123456789"), out_dir=tmp_path,
                         eval_data=EvalData(mnist.test.x[:64], mnist.test.y[:64], "64 mnist")))
    rows = plan_rows(tmp_path / "tiny.keras", {"fp32": tmp_path / "tiny.onnx"}, ("cpu",))
    rows.append(Row("ONNX broken", "onnx", tmp_path / "missing.onnx", "cpu"))
    cfg = BenchConfig(batch_sizes=(1, 8), min_seconds=0.02, repeats=2, latency_runs=10)
    outcomes = run_bench(rows, mnist.test.x[:64], mnist.test.y[:64], cfg)
    assert [o.row.label for o in outcomes] == ["Keras", "TFLite fp32", "ONNX fp32", "ONNX broken"]
    for o in outcomes[:3]:
        assert o.error is None, o.error
        assert set(o.result["throughput"]) == {"1", "8"} and all(v > 0 for v in o.result["throughput"].values())
        assert 0 < o.result["latency_p50_ms"] <= o.result["latency_p99_ms"]
        assert o.result["peak_rss_mb"] > 10 and o.result["size_bytes"] > 0
        assert o.metrics["agreement"] == 1.0  # same weights, three engines
    assert outcomes[0].metrics["accuracy"] == outcomes[2].metrics["accuracy"]
    assert outcomes[3].error and "no such model file" in outcomes[3].error  # reported, the run went on
    report = outcomes_to_json(outcomes, cfg, {"name": "tiny", "dataset": "mnist", "samples": 64,
                                              "machine": "test", "created": "now"})
    md = markdown(report)
    assert "| ONNX broken | cpu | could not run:" in md and md.count("\n|") >= 6


@pytest.mark.slow
def test_bench_command_saves_its_tables_beside_the_model(tmp_path, data_dir, artifacts_root):
    """The CLI end to end on a copy of the shipped mnist (the shipped files are never written)."""
    import shutil
    import subprocess
    import sys

    work = tmp_path / "mnist"
    work.mkdir()
    for name in ("model.keras", "metrics.json", "mnist.onnx", "mnist.int8.onnx"):
        shutil.copy(artifacts_root / "mnist" / name, work / name)
    proc = subprocess.run([sys.executable, "-m", "edgecls", "bench", "mnist", "--workspace", str(tmp_path),
                           "--data-dir", str(data_dir), "--device", "cpu", "--limit", "200", "--batch-sizes", "1,8",
                           "--repeats", "1", "--json"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    saved = json.loads((work / "bench-cpu.json").read_text())
    assert saved["samples"] == 200 and "| ONNX int8 |" in (work / "bench-cpu.md").read_text()
    onnx_rows = [r for r in saved["rows"] if r["label"].startswith("ONNX")]
    assert len(onnx_rows) == 2 and all(r["accuracy"] > 0.95 and r["error"] is None for r in onnx_rows)
    # edgecls against its peers, one process, taking turns: every engine scored and timed, ratios printed and saved
    h2h = {r["label"]: r for r in saved["head_to_head"]["rows"]}
    assert set(h2h) == {"Keras", "TFLite fp32", "TFLite int8", "Keras->ONNX fp32", "edgecls fp32", "edgecls int8"}
    for r in h2h.values():
        assert r["error"] is None and r["accuracy"] > 0.95 and r["throughput"] > 0, r
        assert 0 < r["latency_p50_ms"] <= r["latency_p99_ms"]
    assert h2h["edgecls int8"]["agreement"] > 0.99 and h2h["TFLite int8"]["size_bytes"] < h2h["TFLite fp32"]["size_bytes"]
    ratios = saved["head_to_head"]["ratios"]
    assert ratios["throughput"]["peer"] in h2h and ratios["int8_vs_tflite_int8"]["throughput"] > 0
    assert "edgecls / best peer: throughput" in (work / "bench-cpu.md").read_text()


def test_head_to_head_ratios_and_turns():
    """Ratios: > 1 means edgecls is faster; the engines really take turns (each called every round)."""
    from edgecls.bench import interleaved
    from edgecls.bench.headtohead import ratio_lines, ratios

    rows = [{"label": "TFLite int8", "kind": "peer", "throughput": 200.0, "latency_p50_ms": 0.010},
            {"label": "Keras->ONNX fp32", "kind": "peer", "throughput": 50.0, "latency_p50_ms": 0.030},
            {"label": "edgecls fp32", "kind": "edgecls", "throughput": 100.0, "latency_p50_ms": 0.020},
            {"label": "edgecls int8", "kind": "edgecls", "throughput": 150.0, "latency_p50_ms": 0.025},
            {"label": "broken", "kind": "peer", "error": "no"}]
    r = ratios(rows)
    assert r["throughput"] == {"edgecls": "edgecls int8", "peer": "TFLite int8", "ratio": 0.75}
    assert r["latency_p50"]["edgecls"] == "edgecls fp32" and r["latency_p50"]["ratio"] == pytest.approx(0.5)
    assert r["int8_vs_fp32"]["throughput"] == 1.5 and r["int8_vs_fp32"]["latency_p50"] == pytest.approx(0.8)
    assert r["fp32_vs_keras_onnx"]["throughput"] == 2.0
    lines = ratio_lines({"ratios": r})
    assert any(line.startswith("int8 is not faster than fp32 on this machine") for line in lines)

    calls: list[str] = []
    predicts = {name: (lambda x, name=name: calls.append(name) or x[:, :1]) for name in ("a", "b", "c")}
    x = np.zeros((5, 2, 2, 1), np.uint8)
    rates = interleaved.throughput(predicts, x, 4, rounds=3, window_s=0.001, settle_s=0.001)
    assert set(rates) == {"a", "b", "c"} and all(v > 0 for v in rates.values())
    timed = calls[6:]  # after 2 warm-up calls each
    order = [n for i, n in enumerate(timed) if i == 0 or timed[i - 1] != n]
    assert order == ["a", "b", "c"] * 3  # turns: a, b, c, a, b, c, ...
    lat = interleaved.latency(predicts, x, rounds=2, calls=5, settle_s=0.001)
    assert all(0 < p50 <= p99 for p50, p99 in lat.values())


def test_bench_says_when_int8_is_not_faster():
    from edgecls.bench.runner import int8_speed_note

    def row(label, tp, p50, device="cpu"):
        return {"label": label, "device": device, "error": None, "throughput": {"1": 1.0, "256": tp},
                "latency_p50_ms": p50}

    slow = {"rows": [row("ONNX fp32", 100.0, 0.010), row("ONNX int8", 90.0, 0.009)]}
    assert int8_speed_note(slow) == ("int8 is not faster than fp32 on this machine (cpu): 0.90x the throughput "
                                     "at batch 256, 1.11x the batch-1 speed")
    fast = {"rows": [row("ONNX fp32", 100.0, 0.010), row("ONNX int8", 200.0, 0.005)]}
    assert int8_speed_note(fast) is None
    assert int8_speed_note({"rows": [row("ONNX fp32", 100.0, 0.010)]}) is None  # no int8 row: nothing to say
