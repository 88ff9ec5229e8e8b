"""Generated tables hold the data they are generated from (no TensorFlow, no data set, no docs build).

The model zoo and export tables come from `edgecls models --markdown` and `edgecls exports --markdown`, read back
and checked against independent sources: the model cards, the export reports, the metadata inside each shipped
.onnx and the files on disk, so a generator bug, a stale export or a stale card fails here. The documentation's
benchmark pages are read back and checked against the result files they are built from, and its reference pages
against the code they list."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecls.cli import app
from edgecls.exporters.gates import Gates
from edgecls.runtime.metadata import KEYS, PREFIX, ModelInfo
from edgecls.runtime.session import create_session

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "artifacts"
SHIPPED_ONNX = sorted(ARTIFACTS.glob("*/*.onnx"))


sys.path.insert(0, str(REPO / "docs"))  # the site generators, as the docs build imports them
import gen_benchmarks as bench_docs  # noqa: E402
import gen_reference as reference_docs  # noqa: E402
from gen_markdown import table_rows  # noqa: E402


def _markdown_rows(*command: str, workspace: Path) -> list[dict[str, str]]:
    """The rows a listing command prints with --markdown, for the shipped zoo only (an empty workspace)."""
    result = CliRunner().invoke(app, [*command, "--markdown"],
                                env={"EDGECLS_WORKSPACE": str(workspace), "EDGECLS_ARTIFACTS": str(workspace)})
    assert result.exit_code == 0, result.output
    return table_rows(result.output, "model")


def _pct(cell: str) -> float:
    return float(cell.rstrip("%")) / 100


def _number(cell: str) -> float:
    return float(cell.replace(",", "").split()[0].rstrip("%x"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _meta(path: Path) -> dict[str, str]:
    return dict(create_session(path, "cpu").get_modelmeta().custom_metadata_map)


# --- the model zoo table vs the model cards ---------------------------------------------------------------------

def test_models_markdown_matches_the_model_cards(tmp_path):
    rows = _markdown_rows("models", workspace=tmp_path)
    shipped = sorted(p.parent.name for p in ARTIFACTS.glob("*/metrics.json"))
    assert sorted(row["model"].strip("`") for row in rows) == shipped and len(rows) == len(shipped)
    for row in rows:
        name = row["model"].strip("`")
        card = json.loads((ARTIFACTS / name / "metrics.json").read_text())
        assert (row["role"], row["data set"]) == (card["role"], card["dataset"])
        assert int(row["params"].replace(",", "")) == card["params"]
        assert float(row["MACs/image"].rstrip("M")) == pytest.approx(card["macs"] / 1e6, abs=0.005)
        assert _pct(row["test accuracy"]) == pytest.approx(card["test"]["accuracy"], abs=5e-5)
        assert _sha256(ARTIFACTS / name / "model.keras") == card["sha256"]  # the card describes this very model


# --- the exports table vs the export reports, the embedded metadata and the files ----------------------------------

def test_exports_markdown_matches_reports_metadata_and_files(tmp_path):
    rows = _markdown_rows("exports", workspace=tmp_path)
    listed = [(row["model"].strip("`"), row["file"].strip("`")) for row in rows]
    assert sorted(listed) == sorted((p.parent.name, p.name) for p in SHIPPED_ONNX)
    assert len(set(listed)) == len(listed)  # no duplicate rows
    for row, (model, file) in zip(rows, listed):
        path = ARTIFACTS / model / file
        report = json.loads((ARTIFACTS / model / f"{model}.export.json").read_text())
        written = [v for v in report["variants"] if v["written"] and Path(v["path"]).name == file]
        assert len(written) == 1, f"{file}: the export report does not say it wrote this file"
        entry = written[0]
        # the table's variant column names the slot; the report and metadata may say int8-dynamic for the int8 slot
        assert entry["variant"].split("-")[0] == row["variant"] and entry["passed"] and not entry["failures"]
        info = ModelInfo.from_metadata(_meta(path), str(path))
        assert info.variant == entry["variant"] and info.name == model
        for source in (entry["validation"], info.validation):  # the report and the file agree with the table
            assert source["keras_accuracy"] == pytest.approx(_pct(row["Keras acc"]), abs=5e-5)
            assert source["accuracy"] == pytest.approx(_pct(row["ONNX acc"]), abs=5e-5)
            assert source["top1_agreement"] == pytest.approx(_pct(row["top-1 agreement"]), abs=5e-5)
            assert source["max_abs_diff"] == pytest.approx(float(row["max abs diff"]), rel=0.051)
        assert {k: v for k, v in info.validation.items() if k not in ("data", "gates")} == entry["validation"]
        assert path.stat().st_size == entry["size_bytes"]  # the report describes this very file
        assert _number(row["size"]) == pytest.approx(path.stat().st_size / 1024, abs=0.5)


# --- benchmark pages vs the result files ---------------------------------------------------------------------------

BENCH_FILES = sorted(ARTIFACTS.glob("*/bench-*.json"))


@pytest.mark.parametrize("path", BENCH_FILES, ids=lambda p: p.parent.name)
def test_bench_page_tables_match_the_result_file(path):
    data = json.loads(path.read_text())
    page = bench_docs.model_bench_page(path, data)
    rows = {row["format"]: row for row in table_rows(page, "format")}
    measured = [r for r in data["rows"] if not r.get("error")]
    assert set(rows) == {r["label"] for r in data["rows"]}
    for r in measured:
        row = rows[r["label"]]
        for batch, value in r["throughput"].items():
            assert _number(row[f"img/s @{batch}"]) == pytest.approx(value, abs=0.5)
        assert _number(row["p50 ms @1"]) == pytest.approx(r["latency_p50_ms"], abs=5e-4)
        assert _number(row["p99 ms @1"]) == pytest.approx(r["latency_p99_ms"], abs=5e-4)
        assert _pct(row["test acc"]) == pytest.approx(r["accuracy"], abs=5e-5)
        assert _number(row["size"]) == pytest.approx(r["size_bytes"] / 1024, abs=0.5)
    engines = {row["engine"]: row for row in table_rows(page, "engine")}
    for r in data["head_to_head"]["rows"]:
        if not r.get("error"):
            assert _number(engines[r["label"]]["img/s @256"]) == pytest.approx(r["throughput"], abs=0.5)
            assert _number(engines[r["label"]]["p50 ms @1"]) == pytest.approx(r["latency_p50_ms"], abs=5e-4)
    assert data["created"] in page and data["machine"] in page


def test_overview_table_matches_each_model_bench():
    overview = table_rows(bench_docs.overview_table(BENCH_FILES), "model")
    assert len(overview) == len(BENCH_FILES)
    for row, path in zip(overview, BENCH_FILES):
        data = json.loads(path.read_text())
        by_label = {r["label"]: r for r in data["rows"]}
        assert row["model"].startswith(f"[{data['name']}]")
        for column, label in (("Keras img/s @256", "Keras"), ("ONNX fp32 img/s @256", "ONNX fp32"),
                              ("ONNX int8 img/s @256", "ONNX int8")):
            assert _number(row[column]) == pytest.approx(by_label[label]["throughput"]["256"], abs=0.5), column
        for column, label in (("fp32 p50 ms @1", "ONNX fp32"), ("int8 p50 ms @1", "ONNX int8")):
            assert _number(row[column]) == pytest.approx(by_label[label]["latency_p50_ms"], abs=5e-4), column
        int8_size, fp32_size = (_number(cell) for cell in row["int8 / fp32 size"].split(" / "))
        assert (int8_size, fp32_size) == (pytest.approx(by_label["ONNX int8"]["size_bytes"] / 1024, abs=0.5),
                                          pytest.approx(by_label["ONNX fp32"]["size_bytes"] / 1024, abs=0.5))
        assert data["created"][:10] in row["measured on"]


def test_peers_summary_matches_the_result_file():
    path = ARTIFACTS / "benchmarks" / "int8_peers.json"
    data = json.loads(path.read_text())
    rows = {row["model"]: row for row in table_rows(bench_docs.peers_summary_table(data), "model")}
    models = {k: v for k, v in data.items() if isinstance(v, dict) and "rows" in v}
    assert set(rows) == set(models)
    for name, section in models.items():
        by_label = {r["label"]: r for r in section["rows"]}
        row = rows[name]
        assert _number(row["TFLite int8 img/s"]) == pytest.approx(by_label["TFLite int8"]["throughput"], abs=0.5)
        assert _number(row["edgecls int8 img/s"]) == pytest.approx(by_label["edgecls int8"]["throughput"], abs=0.5)
        assert _number(row["int8 / TFLite int8 (throughput)"]) == pytest.approx(
            section["ratios"]["int8_vs_tflite_int8"]["throughput"], abs=0.005)
        assert _number(row["int8 / TFLite int8 (batch 1)"]) == pytest.approx(
            section["ratios"]["int8_vs_tflite_int8"]["latency_p50"], abs=0.005)


def test_web_and_mobile_tables_match_their_result_files():
    web = json.loads((ARTIFACTS / "benchmarks" / "web.json").read_text())
    rows = table_rows(bench_docs.web_table(web), "model")
    assert len(rows) == len(web["rows"])
    for row, r in zip(rows, web["rows"]):
        assert r["model_file"] in row["bundle model"] and row["model"] == r["model"]
        assert _number(row["first prediction ms"]) == pytest.approx(r["first_prediction_ms"], abs=0.5)
        assert _pct(row["top-1 = Python"]) == pytest.approx(r["top1_agreement"], abs=5e-5)
    mobile = json.loads((ARTIFACTS / "benchmarks" / "mobile.json").read_text())
    rows = table_rows(bench_docs.mobile_table(mobile), "model")
    assert [(row["model"], int(row["operators"])) for row in rows] == [(r["model"], r["operators"]) for r in mobile["rows"]]
    for row, r in zip(rows, mobile["rows"]):
        assert _number(row["session from .ort ms"]) == pytest.approx(r["load_ort_ms"], abs=0.005)


def test_every_result_file_gets_a_page_with_its_provenance():
    pages = bench_docs.all_pages()
    for path in bench_docs.result_files():
        page = pages[f"benchmarks/{bench_docs.page_for(path)[0]}"]
        where = bench_docs.provenance(json.loads(path.read_text()))
        assert f"machine: {where['machine']}" in page and f"load average: {where['load']}" in page


def test_published_results_carry_their_load_average_into_the_docs(tmp_path):
    """A result saved by the benchmark publisher shows the load average it recorded; an older file says it has none."""
    sys.path.insert(0, str(REPO / "tests" / "benchmarks"))
    try:
        from publish import publish
    finally:
        sys.path.remove(str(REPO / "tests" / "benchmarks"))
    out = tmp_path / "speed.md"
    publish(out, "# speed\n", {"rows": [{"model": "m", "throughput": 123.0}]})
    saved = json.loads(out.with_suffix(".json").read_text())
    load = saved["measured"]["load_average"]
    assert len(load) == 3 and all(v >= 0 for v in load)
    assert "load average" in out.read_text()
    where = bench_docs.provenance(saved)
    assert where["load"].startswith(f"{load[0]:.2f} / ") and where["date"] == saved["measured"]["date"]
    assert bench_docs.provenance({"rows": []}) == {"machine": "not recorded", "date": "not recorded",
                                                   "load": "not recorded"}
    assert "not recorded" not in bench_docs.report_page(out)  # the Markdown carries its date and load too
    bare = tmp_path / "old.md"
    bare.write_text("# old\n\n| a |\n| --- |\n| 1 |\n")
    assert bench_docs.report_page(bare).endswith("Date: not recorded. Load average: not recorded.\n")


# --- reference pages vs the code they list -------------------------------------------------------------------------

def test_reference_pages_list_what_the_code_defines():
    from edgecls.cli import exit_codes
    from edgecls.runtime.transforms import PRESETS, TRANSFORMS

    metadata = reference_docs.metadata_page()
    assert [row["key"] for row in table_rows(metadata, "key")] == [f"`{PREFIX}{k}`" for k in KEYS]
    transforms = reference_docs.transforms_page()
    assert [row["step"] for row in table_rows(transforms, "step")] == [f"`{n}`" for n in TRANSFORMS]
    assert [row["preset"] for row in table_rows(transforms, "preset")] == [f"`{n}`" for n in PRESETS]
    codes = table_rows(reference_docs.exit_codes_page(), "code")
    assert [int(row["code"].strip("`")) for row in codes] == sorted(exit_codes.DESCRIPTIONS)
    gates = {row["gate"].strip("`") for row in table_rows(reference_docs.gates_page(), "gate")}
    assert gates == set(Gates().to_dict())
    from edgecls.exporters.formats import FORMATS

    formats = table_rows(reference_docs.formats_page(), "format")
    assert [row["format"].strip("`") for row in formats] == list(FORMATS)
    assert [row["file"].strip("`") for row in formats] == ["NAME.onnx", "NAME.fp16.onnx", "NAME.int8.onnx",
                                                           "NAME.int8.onnx", "mobile/NAME.ort", "web/"]


def test_cli_reference_has_a_page_for_every_command_and_option():
    import typer

    group = typer.main.get_command(app)
    ctx = typer.Context(group, info_name="edgecls")
    pages = reference_docs.cli_pages()
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command.hidden:
            continue
        page = pages[f"{name}.md"]
        assert page.startswith(f"# `edgecls {name}`")
        for param in command.params:
            if param.param_type_name == "option" and not param.hidden:
                assert param.opts[0] in page, (name, param.opts[0])
        assert f"]({name}.md)" in pages["index.md"] and f"]({name}.md)" in pages["SUMMARY.md"]


def test_shipped_metadata_is_complete_and_exported_from_the_shipped_model():
    for path in SHIPPED_ONNX:
        meta = _meta(path)
        assert sorted(k for k in meta if k.startswith(PREFIX)) == sorted(PREFIX + k for k in KEYS), path.name
        info = ModelInfo.from_metadata(meta, str(path))
        card = json.loads((path.parent / "metrics.json").read_text())
        assert info.source_sha256 == card["sha256"] == _sha256(path.parent / "model.keras")
        assert list(info.labels) == card["classes"] and info.dataset == card["dataset"]
        spec = card["input_spec"]
        assert (info.input_spec.height, info.input_spec.width, info.input_spec.channels) == (
            spec["height"], spec["width"], spec["channels"])
        assert info.input_spec.layout == "NCHW" and info.output == "probabilities"
        gates, default = info.validation["gates"], Gates()  # exported under the default gates
        assert gates["fp32_max_abs_diff"] == default.fp32_max_abs_diff
        assert gates["int8_max_accuracy_drop"] == default.int8_max_accuracy_drop
        # validated on the full test set; int8 on all of it that was not also a calibration image, and the
        # report says how many were left out
        excluded = info.validation.get("calibration_overlap_excluded", 0)
        assert info.validation["samples"] + excluded == card["test"]["num_samples"]
        assert excluded == 0 or (info.variant.startswith("int8") and info.validation["disjoint_from_calibration"])
        if info.variant.startswith("int8"):
            assert info.quantization["method"] in ("static", "dynamic")


@pytest.mark.parametrize("card_path", sorted(ARTIFACTS.glob("*/metrics.json")), ids=lambda p: p.parent.name)
def test_history_and_card_agree(card_path):
    """The epoch with the best validation accuracy is the one kept; history.json holds every epoch."""
    card = json.loads(card_path.read_text())
    history = json.loads((card_path.parent / "history.json").read_text())
    val = history["val_accuracy"]
    assert len(val) == card["training"]["epochs_run"] == len(history["loss"])
    assert card["training"]["best_epoch"] == val.index(max(val)) + 1
