"""README's tables and claims, checked against the shipped artifacts themselves (no TensorFlow, no data set).

Each claim is checked against an independent source: README text vs the export report vs the metadata embedded
in the .onnx file vs the file on disk, so a generator bug, a stale table or a stale export all fail here."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecls.cli import app
from edgecls.runtime.metadata import KEYS, PREFIX, ModelInfo
from edgecls.runtime.session import create_session

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "artifacts"
README = (REPO / "README.md").read_text()
SHIPPED_ONNX = sorted(ARTIFACTS.glob("*/*.onnx"))
runner = CliRunner()


def _table(heading: str, first_column: str) -> list[list[str]]:
    """Rows (cells stripped, no header/separator) of the first Markdown table after `heading`."""
    section = README.split(heading, 1)[1]
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_column} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _pct(cell: str) -> float:
    return float(cell.rstrip("%")) / 100


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _meta(path: Path) -> dict[str, str]:
    return dict(create_session(path, "cpu").get_modelmeta().custom_metadata_map)


EXPORT_ROWS = _table("### Exported models", "model")


def test_exported_models_table_covers_every_shipped_onnx_file():
    listed = {(row[0].strip("`"), row[2].strip("`")) for row in EXPORT_ROWS}
    on_disk = {(p.parent.name, p.name) for p in SHIPPED_ONNX}
    assert listed == on_disk
    assert len(EXPORT_ROWS) == len(listed)  # no duplicate rows


@pytest.mark.parametrize("row", EXPORT_ROWS, ids=lambda r: r[2].strip("`"))
def test_exported_models_row_matches_report_metadata_and_file(row):
    model, variant, file, size, keras_acc, onnx_acc, agreement, max_diff = row
    model, file = model.strip("`"), file.strip("`")
    path = ARTIFACTS / model / file
    report = json.loads((ARTIFACTS / model / f"{model}.export.json").read_text())
    written = [v for v in report["variants"] if v["written"] and Path(v["path"]).name == file]
    assert len(written) == 1, f"{file}: the export report does not say it wrote this file"
    entry = written[0]
    # README's variant column names the slot; the report/metadata may say int8-dynamic for the int8 slot.
    assert entry["variant"].split("-")[0] == variant and entry["passed"] and not entry["failures"]
    info = ModelInfo.from_metadata(_meta(path), str(path))
    assert info.variant == entry["variant"] and info.name == model
    for source in (entry["validation"], info.validation):  # the report and the file agree with README
        assert source["keras_accuracy"] == pytest.approx(_pct(keras_acc), abs=5e-5)
        assert source["accuracy"] == pytest.approx(_pct(onnx_acc), abs=5e-5)
        assert source["top1_agreement"] == pytest.approx(_pct(agreement), abs=5e-5)
        assert source["max_abs_diff"] == pytest.approx(float(max_diff), rel=0.051)
    assert {k: v for k, v in info.validation.items() if k not in ("data", "gates")} == entry["validation"]
    assert path.stat().st_size == entry["size_bytes"]  # the report describes this very file
    assert f"{path.stat().st_size / 1024:,.0f} KiB" == size


def test_exports_markdown_command_reproduces_readme_table():
    result = runner.invoke(app, ["exports", "--markdown", "--workspace", str(ARTIFACTS)])
    assert result.exit_code == 0, result.output
    generated = [line for line in result.output.splitlines() if line.startswith("| `")]
    section = README.split("### Exported models", 1)[1].split("\n- ", 1)[0]
    assert generated == [line for line in section.splitlines() if line.startswith("| `")]


@pytest.mark.parametrize("path", SHIPPED_ONNX, ids=lambda p: p.name)
def test_shipped_onnx_metadata_is_complete_and_not_stale(path):
    meta = _meta(path)
    assert sorted(k for k in meta if k.startswith(PREFIX)) == sorted(PREFIX + k for k in KEYS)
    info = ModelInfo.from_metadata(meta, str(path))
    card = json.loads((path.parent / "metrics.json").read_text())
    keras_sha = _sha256(path.parent / "model.keras")
    assert info.source_sha256 == card["sha256"] == keras_sha  # exported from the model.keras shipped beside it
    assert list(info.labels) == card["classes"] and info.dataset == card["dataset"]
    spec = card["input_spec"]
    assert (info.input_spec.height, info.input_spec.width, info.input_spec.channels) == (
        spec["height"], spec["width"], spec["channels"])
    assert info.input_spec.layout == "NCHW" and info.output == "probabilities"
    gates = info.validation["gates"]
    assert gates["fp32_max_abs_diff"] == 1e-4 and gates["int8_max_accuracy_drop"] == 0.5  # README's defaults
    # Validated on the full test set; int8 on all of it that was not also a calibration image (issue 16:
    # FER-2013's test split repeats 12 training images), and the report says how many were left out.
    excluded = info.validation.get("calibration_overlap_excluded", 0)
    assert info.validation["samples"] + excluded == card["test"]["num_samples"]
    assert excluded == 0 or (info.variant.startswith("int8") and info.validation["disjoint_from_calibration"])
    if info.variant.startswith("int8"):
        assert info.quantization["method"] in ("static", "dynamic")


ZOO_ROWS = _table("## Model zoo", "model")


def test_model_zoo_table_matches_the_model_cards():
    shipped = sorted(p.parent.name for p in ARTIFACTS.glob("*/metrics.json"))
    assert sorted(row[0].strip("`") for row in ZOO_ROWS) == shipped
    for name, role, dataset, params, macs, accuracy, _arch in ZOO_ROWS:
        card = json.loads((ARTIFACTS / name.strip("`") / "metrics.json").read_text())
        assert (card["role"], card["dataset"]) == (role, dataset)
        assert int(params.replace(",", "")) == card["params"]
        assert float(macs.rstrip("M")) == pytest.approx(card["macs"] / 1e6, abs=0.005)
        assert _pct(accuracy) == pytest.approx(card["test"]["accuracy"], abs=5e-5)
        assert _sha256(ARTIFACTS / name.strip("`") / "model.keras") == card["sha256"]


def test_models_markdown_command_reproduces_readme_table():
    result = runner.invoke(app, ["models", "--markdown", "--workspace", str(ARTIFACTS)])
    assert result.exit_code == 0, result.output
    generated = [line for line in result.output.splitlines() if line.startswith("| `")]
    readme_rows = [line for line in README.split("## Model zoo", 1)[1].split("Goals from", 1)[0].splitlines()
                   if line.startswith("| `")]
    assert generated == readme_rows


def test_goal_sentence_quotes_the_cards():
    for name in ("mnist", "fashion", "cifar10", "emotion"):
        card = json.loads((ARTIFACTS / name / "metrics.json").read_text())
        claimed = f"{card['test']['accuracy'] * 100:.2f}%"
        assert re.search(rf"{name} >= [0-9.]+% .*?{re.escape(claimed)}", README, re.DOTALL), (name, claimed)


@pytest.mark.parametrize("card_path", sorted(ARTIFACTS.glob("*/metrics.json")), ids=lambda p: p.parent.name)
def test_history_and_card_agree(card_path):
    """README: the epoch with the best validation accuracy is kept; history.json holds every epoch."""
    card = json.loads(card_path.read_text())
    history = json.loads((card_path.parent / "history.json").read_text())
    val = history["val_accuracy"]
    assert len(val) == card["training"]["epochs_run"] == len(history["loss"])
    assert card["training"]["best_epoch"] == val.index(max(val)) + 1
