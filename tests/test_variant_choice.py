"""The one variant policy (runtime/variant_policy.py): auto is measured once per machine, cached, re-measured when
the cache is corrupt, the same whatever threads or spinning a caller runs with, and says when int8 is not faster
than fp32. These test the mechanism, never which variant wins (that depends on the machine)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image

from edgecls.runtime import Classifier
from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.tuning import variant as tuning
from edgecls.runtime.tuning.cache import entry_path, read_entry, write_entry
from edgecls.runtime.variant_policy import choose_variant

CPU = "CPUExecutionProvider"


@pytest.fixture()
def art(tmp_path, artifacts_root, monkeypatch):
    """A private copy of the shipped mnist (fp32, int8, fp16) and a private cache dir."""
    folder = tmp_path / "art" / "mnist"
    folder.mkdir(parents=True)
    for suffix in (".onnx", ".int8.onnx", ".fp16.onnx"):
        shutil.copy(artifacts_root / "mnist" / f"mnist{suffix}", folder)
    monkeypatch.setenv("EDGECLS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "art"


def _files(art):
    return {"fp32": art / "mnist" / "mnist.onnx", "int8": art / "mnist" / "mnist.int8.onnx"}


def _seed(art, winner: str, int8_factor: float) -> None:
    """A cache entry as if this machine had measured int8 at `int8_factor` x fp32's time."""
    measured = {"fp32": {"latency_ms": 0.02, "per_image_ms": 0.01},
                "int8": {"latency_ms": 0.02 * int8_factor, "per_image_ms": 0.01 * int8_factor}}
    write_entry(tuning.cache_key(_files(art), CPU), {"value": winner, "timings": measured}, tuning.KIND + "-")


def test_auto_measures_once_then_reads_the_cache(art):
    first = choose_variant("mnist", device="cpu", workspace=art)
    assert first.requested == "auto" and "measured now" in first.reason
    assert set(first.measured) == {"fp32", "int8"}  # fp16 is never a CPU candidate
    assert first.variant in first.measured and first.path == _files(art)[first.variant]
    assert "fp16" in first.skipped and "GPU" in first.skipped["fp16"]
    assert all(m["latency_ms"] > 0 and m["per_image_ms"] > 0 for m in first.measured.values())
    assert first.variant == tuning.fastest(first.measured)
    entry = read_entry(tuning.cache_key(_files(art), CPU), tuning.KIND + "-")
    assert entry is not None and entry["value"] == first.variant
    second = choose_variant("mnist", device="cpu", workspace=art, tune="cached")
    assert second.reason == "fastest here (cached)" and second.path == first.path
    assert second.measured == first.measured
    for threads, spin in ((1, True), (2, False), (None, True)):  # nothing a caller chooses changes the answer
        clf = Classifier("mnist", device="cpu", threads=threads, spin=spin, workspace=art)
        assert clf.choice.path == first.path and clf.info.variant == first.variant and "cached" in clf.choice.reason
    assert clf.run(np.zeros((2, 28, 28, 1), np.uint8)).shape == (2, 10)


def test_tune_off_and_cached_never_measure(art, monkeypatch):
    monkeypatch.setattr(tuning, "time_variants", lambda *a, **k: pytest.fail("measured"))
    assert choose_variant("mnist", device="cpu", workspace=art, tune="off").variant == "fp32"
    nothing = choose_variant("mnist", device="cpu", workspace=art, tune="cached")
    assert nothing.variant == "fp32" and "nothing cached" in nothing.reason and not nothing.measured


@pytest.mark.parametrize("content", ["{not json", "", '{"key": 1}', "[]", "NEGATIVE", "UNKNOWN_VARIANT",
                                     "MISSING_CANDIDATE"])
def test_corrupt_cache_is_measured_again_and_rewritten(art, content):
    key = tuning.cache_key(_files(art), CPU)
    path = entry_path(key, tuning.KIND + "-")
    _seed(art, "fp32", 2.0)
    good = json.loads(path.read_text())
    if content == "NEGATIVE":
        good["timings"]["int8"]["latency_ms"] = -1.0
    elif content == "UNKNOWN_VARIANT":
        good["value"] = "int4"
    elif content == "MISSING_CANDIDATE":
        del good["timings"]["int8"]
    path.write_text(json.dumps(good) if content.isupper() else content)
    choice = choose_variant("mnist", device="cpu", workspace=art)
    assert "measured now" in choice.reason and set(choice.measured) == {"fp32", "int8"}
    assert read_entry(key, tuning.KIND + "-")["timings"] == choice.measured  # rewritten whole


def test_cache_key_follows_files_and_provider_only(art):
    files = _files(art)
    base = tuning.cache_key(files, CPU)
    assert base == tuning.cache_key(files, CPU) and base != tuning.cache_key(files, "CUDAExecutionProvider")
    assert "onnxruntime" in base and base["cpu"] and base["cores"] >= 1
    assert not {"threads", "spin"} & set(base)  # one answer for every entry point of this machine
    files["int8"].write_bytes(files["int8"].read_bytes() + b"\0")  # a re-exported model is measured again
    assert tuning.cache_key(files, CPU)["files"]["int8"] != base["files"]["int8"]


def test_int8_not_faster_is_said_and_auto_keeps_fp32(art):
    _seed(art, "fp32", 1.25)
    clf = Classifier("mnist", device="cpu", threads=1, workspace=art)
    assert clf.choice.reason == "fastest here (cached)" and clf.info.variant == "fp32"
    assert clf.choice.warning == "int8 is not faster than fp32 on this machine (0.80x at batch 1, 0.80x at batch 64)"
    with pytest.warns(RuntimeWarning, match="int8 is not faster than fp32 on this machine"):
        explicit = Classifier("mnist", variant="int8", device="cpu", threads=1, workspace=art)
    assert explicit.info.variant == "int8" and explicit.choice.reason == "asked for"  # asked for, given; warned
    _seed(art, "int8", 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # int8 faster: nothing to warn about
        assert Classifier("mnist", variant="int8", device="cpu", threads=1, workspace=art).choice.warning is None
    assert Classifier("mnist", device="cpu", threads=1, workspace=art).info.variant == "int8"


def test_variant_without_validation_is_never_picked(art):
    import onnx

    path = _files(art)["int8"]
    model = onnx.load(str(path))
    for prop in model.metadata_props:
        if prop.key == "edgecls.validation":
            prop.value = "{}"
    onnx.save(model, str(path))
    choice = choose_variant("mnist", device="cpu", workspace=art)
    assert choice.variant == "fp32" and not choice.measured and "gate" in choice.skipped["int8"]
    assert choice.reason == "the only validated variant"


def test_paths_run_as_given_and_a_contradicting_variant_is_refused(art):
    int8 = _files(art)["int8"]
    assert choose_variant(int8).variant == "int8" and choose_variant(int8, "int8").requested == "file"
    with pytest.raises(EdgeclsError, match="this file is the int8 variant, not fp32"):
        choose_variant(int8, "fp32")
    folder = choose_variant(art / "mnist", "int8")  # a model folder named by path
    assert folder.path == int8
    with pytest.raises(EdgeclsError, match="unknown variant 'int4'"):
        choose_variant("mnist", "int4", workspace=art)
    (art / "mnist" / "mnist.int8.onnx").unlink()
    with pytest.raises(EdgeclsError, match="no int8 variant"):
        choose_variant(art / "mnist", "int8")


def test_fastest_and_speedup_are_plain_arithmetic():
    m = {"fp32": {"latency_ms": 1.0, "per_image_ms": 1.0}, "int8": {"latency_ms": 2.0, "per_image_ms": 0.4}}
    assert tuning.fastest(m) == "int8"  # sqrt(0.8) < 1
    assert tuning.speedup(m) == {"latency": 0.5, "throughput": 2.5}


def test_infer_says_when_int8_is_not_faster(art, tmp_path, mnist):
    _seed(art, "fp32", 1.5)
    image = tmp_path / "7.png"
    Image.fromarray(mnist.test.x[0, ..., 0]).save(image)
    proc = subprocess.run([sys.executable, "-m", "edgecls", "infer", str(image), "--workspace", str(art),
                           "--device", "cpu", "--json"], capture_output=True, text=True, timeout=120,
                          env={**os.environ})
    assert proc.returncode == 0, proc.stderr
    assert "int8 is not faster than fp32 on this machine" in proc.stderr
    assert "mnist.onnx (fp32, auto: fastest here (cached))" in proc.stderr
    assert json.loads(proc.stdout)[0]["label"] == str(mnist.test.y[0])
    forced = subprocess.run([sys.executable, "-m", "edgecls", "infer", str(image), "--workspace", str(art),
                             "--device", "cpu", "--variant", "int8"], capture_output=True, text=True, timeout=120)
    assert forced.returncode == 0 and "mnist.int8.onnx (int8, int8: asked for)" in forced.stderr
    assert "int8 is not faster than fp32 on this machine" in forced.stderr and "Traceback" not in forced.stderr
