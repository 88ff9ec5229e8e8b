"""edgecls.api: what the commands do, as functions returning result dataclasses; the CLI only adds flags' words
and exit codes. Also `edgecls tune`, and tuning that stays visible and optional."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecls import api
from edgecls.cli import exit_codes
from edgecls.cli.hints import cli_message
from edgecls.runtime import Classifier
from edgecls.runtime.outputs import OutputError


@pytest.fixture(scope="module")
def digits(tmp_path_factory, mnist) -> Path:
    folder = tmp_path_factory.mktemp("api-digits")
    for i in range(40):
        Image.fromarray(mnist.test.x[i, ..., 0]).save(folder / f"{i:03d}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    return folder


def test_infer_returns_what_ran_and_caps_top_k_once(digits, tmp_path, mnist):
    out = tmp_path / "preds.csv"
    result = api.infer([digits], "mnist", top_k=1000, output=out, keep=5)
    assert isinstance(result, api.InferResult) and result.top_k == 10 and result.output == out
    assert (result.tally.ok, result.tally.failed, result.tally.skipped) == (40, 1, 0)
    assert result.choice.requested == "auto" and result.choice.path.name.startswith("mnist")
    assert result.engine.provider == "CPUExecutionProvider" and result.engine.threads >= 1
    assert any("top-k 1000" in note for note in result.notes)
    header = out.read_text().splitlines()[0].split(",")
    assert header[-3:] == ["score_10", "unsure", "error"] and len(header) == 3 + 2 * 9 + 2  # 10 labels, no more
    labels = [r.prediction.label for r in result.results]
    assert len(labels) == 5 and labels == [str(v) for v in mnist.test.y[:5]]
    assert exit_codes.for_run(result.tally.failed, result.tally.skipped) == exit_codes.INPUTS_SKIPPED


def test_refusals_are_typed_and_the_flags_are_the_cli_s(digits, tmp_path):
    notes = tmp_path / "notes.csv"
    notes.write_text("my,own,data\n")
    cases = [(digits / "000.png", "input"), (notes, "exists"), (tmp_path, "directory"), (tmp_path / "x.txt", "format")]
    for output, kind in cases:
        with pytest.raises(OutputError) as err:
            api.infer([digits], "mnist", output=output)
        assert err.value.kind == kind and "--" not in str(err.value)  # the library names no command-line flag
        assert "--" in cli_message(err.value)  # the CLI says which flag changes it
    assert notes.read_text() == "my,own,data\n"
    assert exit_codes.for_run(0, 0) == 0 and exit_codes.for_run(0, 0, interrupted=True) == 130


def test_evaluate_an_exported_file_reproduces_its_validation():
    clf = Classifier("mnist", variant="int8", tune="off")
    result = api.evaluate(clf.path)
    assert isinstance(result, api.Evaluation) and result.num_samples == clf.info.validation["samples"]
    assert result.accuracy == pytest.approx(clf.info.validation["accuracy"], abs=1e-4)
    assert json.loads(json.dumps(result.to_dict()))["accuracy"] == result.accuracy


def test_tune_reports_every_choice_and_then_reads_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECLS_CACHE_DIR", str(tmp_path / "cache"))
    first = api.tune("mnist", device="cpu", threads=2)
    settings = [row["setting"] for row in first.rows()]
    assert settings == ["variant", "threads", "batch-1 cores", "sub-batch"]
    assert {first.engine.tuning[k].source for k in ("batch1_cores", "sub_batch")} == {"measured"}
    proc = subprocess.run([sys.executable, "-m", "edgecls", "tune", "mnist", "--device", "cpu", "--threads", "2",
                           "--json"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "EDGECLS_CACHE_DIR": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    again = json.loads(proc.stdout)
    assert again["choice"]["file"] == first.choice.path.name and "cached" in again["choice"]["reason"]
    assert {again["engine"]["tuning"][k]["source"] for k in ("batch1_cores", "sub_batch")} == {"cached"}
    assert again["engine"]["sub_batch"] == first.engine.sub_batch
    table = subprocess.run([sys.executable, "-m", "edgecls", "tune", "mnist", "--device", "cpu"], capture_output=True,
                           text=True, timeout=300, env={**os.environ, "EDGECLS_CACHE_DIR": str(tmp_path / "cache")})
    assert table.returncode == 0 and "batch-1 cores" in table.stdout and "Traceback" not in table.stderr


def test_tuning_off_never_touches_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECLS_CACHE_DIR", str(tmp_path / "cache"))
    clf = Classifier("mnist", device="cpu", threads=2, tune="off")
    assert clf.info.variant == "fp32" and "tuning off" in clf.choice.reason
    assert {d.source for d in clf.engine.tuning.values()} == {"default"}
    assert clf.run(np.zeros((40, 28, 28, 1), np.uint8)).shape == (40, 10)
    assert not (tmp_path / "cache").exists()
