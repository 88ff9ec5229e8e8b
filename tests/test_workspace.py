"""Workspaces and CLI manners (issue 17): where user runs write, how names are found, what a user sees when
something is missing; fast, no training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecls.cli import app
from edgecls.data.recorded import card_test_split
from edgecls.errors import DataError
from edgecls.runtime import paths
from edgecls.runtime.errors import EdgeclsError

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()


def edgecls(*args: str) -> subprocess.CompletedProcess:
    """As a user runs it: errors go through the CLI's one-line handler."""
    return subprocess.run([sys.executable, "-m", "edgecls.cli", *args], capture_output=True, text=True, timeout=300)


def test_workspace_rule(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGECLS_ARTIFACTS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert paths.workspace_dir() == tmp_path / "artifacts"  # a user's project: ./artifacts
    assert paths.workspace_dir(tmp_path / "p") == tmp_path / "p"  # --project
    monkeypatch.setenv("EDGECLS_ARTIFACTS", str(tmp_path / "env"))
    assert paths.workspace_dir() == tmp_path / "env"
    monkeypatch.delenv("EDGECLS_ARTIFACTS")
    monkeypatch.chdir(REPO)  # inside the checkout ./artifacts is the shipped zoo: user runs go to ./workspace
    assert paths.workspace_dir() == REPO / "workspace"
    assert paths.is_shipped(REPO / "artifacts" / "mnist" / "mnist.onnx") and not paths.is_shipped(tmp_path)


def test_reads_fall_back_to_the_shipped_zoo_and_the_workspace_shadows_it(tmp_path):
    assert paths.resolve_model("mnist", "int8", tmp_path) == REPO / "artifacts" / "mnist" / "mnist.int8.onnx"
    mine = tmp_path / "mnist" / "mnist.int8.onnx"
    mine.parent.mkdir()
    mine.write_bytes((REPO / "artifacts" / "mnist" / "mnist.int8.onnx").read_bytes())
    assert paths.resolve_model("mnist", "int8", tmp_path) == mine
    assert paths.model_dir("mnist", tmp_path) == REPO / "artifacts" / "mnist"  # the card still comes from the zoo


def test_typo_gets_did_you_mean_not_an_export_hint(tmp_path):
    with pytest.raises(EdgeclsError) as err:
        paths.resolve_model("mnsit", "fp32", tmp_path)
    assert "did you mean 'mnist'?" in str(err.value) and "export" not in str(err.value)
    proc = edgecls("eval", "fashon", "--artifacts", str(tmp_path))
    assert proc.returncode == 1 and "did you mean 'fashion'" in proc.stderr and proc.stdout == ""


def test_an_onnx_path_is_a_file_not_a_name(tmp_path):
    proc = edgecls("eval", "path/to/x.onnx", "--json")
    assert proc.returncode == 1 and proc.stdout == ""  # --json > out.json never holds an error
    assert "path/to/x.onnx: no such model file" in proc.stderr and "artifacts/" not in proc.stderr


def test_recorded_folder_gone_is_one_clear_error(tmp_path):
    card = {"name": "pets", "dataset": "pets", "classes": ["cat", "dog"],
            "input_spec": {"height": 8, "width": 8, "channels": 1},
            "data": {"kind": "folder", "path": str(tmp_path / "pets"), "classes": ["cat", "dog"],
                     "test_files": {"cat": ["cat/1.png"], "dog": ["dog/1.png"]}}}
    with pytest.raises(DataError, match=r"trained on .*pets, which is gone; give --data"):
        card_test_split(card)
    (tmp_path / "pets" / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match=r"2 of the 2 held-out test images .* are gone"):
        card_test_split(card)


def test_eval_all_names_what_it_cannot_evaluate(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "SHIPPED_DIR", tmp_path / "no-shipped-zoo")
    broken = tmp_path / "ws" / "broken"
    broken.mkdir(parents=True)
    (broken / "metrics.json").write_text(json.dumps({"name": "broken", "classes": ["a", "b"]}))
    result = runner.invoke(app, ["eval", "all", "--project", str(tmp_path / "ws")])
    assert result.exit_code == 1, result.output  # none could be evaluated
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("could not evaluate")]
    assert len(lines) == 1 and "broken" in lines[0] and "model.keras is missing" in lines[0]


def test_tensorflow_start_up_banner_is_silenced():
    code = "from edgecls.quiet import quiet_tensorflow; quiet_tensorflow(); import tensorflow; print('ok')"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok"
    assert proc.stderr.strip() == "", proc.stderr


def _digit_folder(root: Path, split, per_class: int) -> Path:
    from PIL import Image

    for label in range(10):
        folder = root / str(label)
        folder.mkdir(parents=True)
        for i in [int(j) for j in (split.y == label).nonzero()[0][:per_class]]:
            Image.fromarray(split.x[i, ..., 0]).save(folder / f"{i}.png")
    return root


def test_bare_onnx_quantize_validate_eval(tmp_path, mnist):
    """An fp32 .onnx whose Keras source is nowhere: gated int8, checks and accuracy from labelled folders."""
    import onnx

    from edgecls.runtime import Classifier

    proto = onnx.load(REPO / "artifacts" / "mnist" / "mnist.onnx")
    for prop in proto.metadata_props:
        if prop.key == "edgecls.name":
            prop.value = "orphan"  # no model card or .keras anywhere answers to this name
    model = tmp_path / "orphan.onnx"
    onnx.save(proto, model)
    before = model.read_bytes()
    calib = _digit_folder(tmp_path / "calib", mnist.train, 20)
    evalf = _digit_folder(tmp_path / "eval", mnist.test, 20)

    proc = edgecls("quantize", str(model), "--calib-data", str(calib), "--eval-data", str(evalf))
    assert proc.returncode == 0, proc.stderr
    int8 = tmp_path / "orphan.int8.onnx"
    info = Classifier(int8, device="cpu").info
    assert info.variant.startswith("int8") and info.validation["reference"] == "fp32 ONNX"
    assert info.validation["samples"] == 200 and model.read_bytes() == before  # the input is never touched

    proc = edgecls("validate", str(int8), "--data", str(evalf))
    assert proc.returncode == 0 and "no Keras source" in proc.stderr, proc.stderr
    proc = edgecls("eval", str(int8), "--data", str(evalf), "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["num_samples"] == 200

    out = tmp_path / "strict.int8.onnx"  # a gate no int8 can meet: clear message, exit 1, nothing written
    proc = edgecls("quantize", str(model), "--calib-data", str(calib), "--eval-data", str(evalf), "--quant", "static",
                   "--max-int8-drop", "-1", "--out", str(out))
    assert proc.returncode == 1 and "no int8 passed its gate" in proc.stderr and not out.exists()
    proc = edgecls("quantize", str(model), "--calib-data", str(calib), "--out", str(model))
    assert proc.returncode == 1 and "is the input model" in proc.stderr and model.read_bytes() == before
