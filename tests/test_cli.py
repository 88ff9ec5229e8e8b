"""The `edgecls` command as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from edgecls.cli import app

runner = CliRunner()
HEAVY = ("tensorflow", "keras", "tf2onnx")


def _run(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "edgecls.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_cli_and_runtime_import_without_tensorflow():
    code = ("import sys, edgecls.cli, edgecls.runtime; "
            f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}); print(bad); sys.exit(bool(bad))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "eval", "models"):
        assert command in result.output


def test_models_lists_registry_and_shipped_accuracy(artifacts_root):
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert {"mnist", "fashion", "cifar10", "emotion", "mnist-seed", "cifar10-seed"} <= set(rows)
    for name in ("mnist", "fashion", "cifar10", "emotion"):  # the shipped card, read here, not through the command
        card = json.loads((artifacts_root / name / "metrics.json").read_text())
        assert rows[name]["test_accuracy"] == card["test"]["accuracy"] and rows[name]["role"] == "edge"
    assert rows["mnist-conv28"]["params"] == 615_844  # the source study's count
    assert rows["mnist"]["params"] == 29_402


@pytest.mark.slow  # Keras on the full test set
def test_eval_reproduces_recorded_accuracy(data_dir, artifacts_root):
    result = runner.invoke(app, ["eval", "mnist", "--json", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["num_samples"] == 10000
    assert report["accuracy"] == pytest.approx(report["recorded_accuracy"], abs=5e-4)
    assert set(report["per_class"]) == set("0123456789")


def test_errors_are_one_line_not_tracebacks(tmp_path):
    proc = _run("eval", "no-such-model", "--workspace", str(tmp_path))
    assert proc.returncode == 1
    assert "no trained model at" in proc.stderr and "Traceback" not in proc.stdout + proc.stderr  # errors: stderr
    proc = _run("train", "mnist", "--data-dir", str(tmp_path), env_extra={"EDGECLS_OFFLINE": "1"})
    assert proc.returncode == 1
    assert str(tmp_path / "mnist.npz") in proc.stderr and "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.slow
def test_train_and_eval_own_folder(tmp_path, mnist):
    """`edgecls train NAME --data folder` on a user's images, then eval and the zoo listing see it."""
    data = tmp_path / "digits"
    for label in (0, 1, 2):
        folder = data / f"class_{label}"
        folder.mkdir(parents=True)
        for i in np.flatnonzero(mnist.train.y == label)[:60]:
            Image.fromarray(mnist.train.x[i, ..., 0]).save(folder / f"{i}.png")
    (data / "class_0" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff garbage")
    arts = tmp_path / "artifacts"
    result = runner.invoke(app, ["train", "digits", "--data", str(data), "--arch", "mnist", "--epochs", "2",
                                 "--workspace", str(arts)])
    assert result.exit_code == 2, result.output  # trained, but one image was skipped
    assert "corrupt.jpg" in result.output  # reported, skipped, run went on
    card = json.loads((arts / "digits" / "metrics.json").read_text())
    assert card["classes"] == ["class_0", "class_1", "class_2"] and card["role"] == "custom"
    result = runner.invoke(app, ["eval", "digits", "--data", str(data), "--workspace", str(arts), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["num_samples"] == 180


def test_exports_table_matches_the_shipped_models(artifacts_root):
    from edgecls.runtime.classifier import Classifier

    result = runner.invoke(app, ["exports", "--json"])
    assert result.exit_code == 0, result.output
    rows = {(r["model"], r["variant"]): r for r in json.loads(result.output)}
    assert ("mnist", "fp32") in rows and ("mnist", "int8") in rows
    for (model, variant), row in rows.items():
        clf = Classifier(artifacts_root / model / row["file"], device="cpu")
        assert clf.info.variant == variant
        assert clf.info.validation["accuracy"] == row["accuracy"]  # report and embedded metadata agree
