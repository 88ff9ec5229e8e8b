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
from edgecls.card import card_from_dict
from edgecls.data.plan import DataPlan
from edgecls.errors import DataError
from edgecls.runtime import environment, store
from edgecls.runtime.errors import EdgeclsError

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()


def edgecls(*args: str) -> subprocess.CompletedProcess:
    """As a user runs it: errors go through the CLI's one-line handler."""
    return subprocess.run([sys.executable, "-m", "edgecls.cli", *args], capture_output=True, text=True, timeout=300)


def test_workspace_rule(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGECLS_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert store.workspace_dir() == tmp_path / "workspace"  # default: ./workspace
    assert store.workspace_dir(tmp_path / "p") == tmp_path / "p"  # --workspace
    monkeypatch.setenv("EDGECLS_WORKSPACE", str(tmp_path / "env"))
    assert store.workspace_dir() == tmp_path / "env"
    monkeypatch.delenv("EDGECLS_WORKSPACE")
    monkeypatch.setenv("EDGECLS_ARTIFACTS", str(tmp_path / "old"))  # the older variable is still read
    assert store.workspace_dir() == tmp_path / "old"
    monkeypatch.chdir(REPO)  # inside the checkout too: ./workspace, never the shipped zoo
    monkeypatch.delenv("EDGECLS_ARTIFACTS")
    assert store.workspace_dir() == REPO / "workspace"
    assert store.is_shipped(REPO / "artifacts" / "mnist" / "mnist.onnx") and not store.is_shipped(tmp_path)


def test_relative_environment_paths_are_taken_from_the_start_folder(tmp_path, monkeypatch):
    from edgecls import config

    monkeypatch.setattr(environment, "START_DIR", tmp_path)
    monkeypatch.setenv("EDGECLS_WORKSPACE", "ws")
    monkeypatch.setenv("EDGECLS_DATA", "data")
    monkeypatch.chdir(REPO / "tests")  # a command or a test that moves elsewhere later
    assert store.workspace_dir() == tmp_path / "ws" and config.data_dir() == tmp_path / "data"
    assert config.data_dir("given") == tmp_path / "given"  # --data-dir as typed in the start folder


def test_reads_fall_back_to_the_shipped_zoo_and_the_workspace_shadows_it(tmp_path):
    assert store.find_onnx("mnist", "int8", tmp_path) == REPO / "artifacts" / "mnist" / "mnist.int8.onnx"
    mine = tmp_path / "mnist" / "mnist.int8.onnx"
    mine.parent.mkdir()
    mine.write_bytes((REPO / "artifacts" / "mnist" / "mnist.int8.onnx").read_bytes())
    assert store.find_onnx("mnist", "int8", tmp_path) == mine
    assert store.model_folder("mnist", tmp_path).directory == REPO / "artifacts" / "mnist"  # the card: the zoo's


def test_locate_names_folders_and_files(tmp_path):
    onnx = store.locate(REPO / "artifacts" / "mnist" / "mnist.int8.onnx")
    assert (onnx.name, onnx.variant, onnx.is_onnx) == ("mnist", "int8", True)
    keras = store.locate(REPO / "artifacts" / "fashion" / "model.keras")
    assert keras.name == "fashion" and keras.is_keras and keras.folder.shipped
    folder = store.locate(REPO / "artifacts" / "cifar10")
    assert folder.file is None and set(folder.folder.variants()) == {"fp32", "int8"}
    other = tmp_path / "mine.keras"
    other.write_bytes(b"x")
    assert store.locate(other).name == "mine"  # a .keras outside a model folder: named by its stem
    with pytest.raises(EdgeclsError, match="no such model file"):
        store.locate(tmp_path / "missing.onnx")


def test_typo_gets_did_you_mean_not_an_export_hint(tmp_path):
    with pytest.raises(EdgeclsError) as err:
        store.find_onnx("mnsit", "fp32", tmp_path)
    assert "did you mean 'mnist'?" in str(err.value) and "export" not in str(err.value)
    proc = edgecls("eval", "fashon", "--workspace", str(tmp_path))
    assert proc.returncode == 1 and "did you mean 'fashion'" in proc.stderr and proc.stdout == ""


def test_an_onnx_path_is_a_file_not_a_name(tmp_path):
    proc = edgecls("eval", "path/to/x.onnx", "--json")
    assert proc.returncode == 1 and proc.stdout == ""  # --json > out.json never holds an error
    assert "path/to/x.onnx: no such model file" in proc.stderr and "artifacts/" not in proc.stderr


def test_recorded_folder_gone_is_one_clear_error(tmp_path):
    card = card_from_dict({"name": "pets", "dataset": "pets", "classes": ["cat", "dog"],
                           "input_spec": {"height": 8, "width": 8, "channels": 1},
                           "test": {"split": "held-out test split", "accuracy": 0.5},
                           "data": {"kind": "folder", "path": str(tmp_path / "pets"), "classes": ["cat", "dog"],
                                    "test_files": {"cat": ["cat/1.png"], "dog": ["dog/1.png"]}}}, tmp_path / "c.json")
    with pytest.raises(DataError, match=r"trained on .*pets, which is gone; give --data"):
        DataPlan.for_card(card).test()
    (tmp_path / "pets" / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match=r"2 of the 2 held-out test images .* are gone"):
        DataPlan.for_card(card).test()


def test_eval_all_names_what_it_cannot_evaluate(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "zoo_dir", lambda: None)
    broken, lost = tmp_path / "ws" / "broken", tmp_path / "ws" / "lost"
    for folder in (broken, lost):
        folder.mkdir(parents=True)
    (broken / "metrics.json").write_text(json.dumps({"name": "broken", "classes": ["a", "b"]}))  # hand-cut card
    card = json.loads((REPO / "artifacts" / "mnist" / "metrics.json").read_text())
    (lost / "metrics.json").write_text(json.dumps({**card, "name": "lost"}))  # a good card, no model.keras
    result = runner.invoke(app, ["eval", "all", "--workspace", str(tmp_path / "ws")])
    assert result.exit_code == 1, result.output  # none could be evaluated
    lines = sorted(ln for ln in result.stderr.splitlines() if ln.startswith("could not evaluate"))
    assert len(lines) == 2 and "Traceback" not in result.output
    assert lines[0].startswith("could not evaluate broken: ") and "metrics.json: field 'test' is missing" in lines[0]
    assert lines[1].startswith("could not evaluate lost: ") and "model.keras is missing" in lines[1]


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

    proc = edgecls("validate", str(int8), "--data", str(evalf), "--json")  # against the fp32 file beside it
    assert proc.returncode == 0 and "no Keras source: validated against the fp32 ONNX file" in proc.stderr, proc.stderr
    checked = json.loads(proc.stdout)
    assert checked["reference"] == "fp32 ONNX" and checked["validation"]["samples"] == 200 and checked["passed"]
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "orphan.int8.onnx").write_bytes(int8.read_bytes())  # no fp32 file, no Keras: checks and accuracy
    proc = edgecls("validate", str(alone / "orphan.int8.onnx"), "--data", str(evalf))
    assert proc.returncode == 0 and "checked the file and scored its accuracy" in proc.stderr, proc.stderr
    proc = edgecls("eval", str(int8), "--data", str(evalf), "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["num_samples"] == 200

    out = tmp_path / "strict.int8.onnx"  # a gate no int8 can meet: clear message, exit 1, nothing written
    proc = edgecls("quantize", str(model), "--calib-data", str(calib), "--eval-data", str(evalf), "--quant", "static",
                   "--max-int8-error", "0", "--out", str(out))
    assert proc.returncode == 1 and "no int8 passed its gate" in proc.stderr and not out.exists()
    proc = edgecls("quantize", str(model), "--calib-data", str(calib), "--out", str(model))
    assert proc.returncode == 1 and "is the input model" in proc.stderr and model.read_bytes() == before
