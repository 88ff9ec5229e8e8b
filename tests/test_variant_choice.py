"""variant="auto": measured once per machine, cached, re-measured when the cache is corrupt; says when int8
is not faster than fp32. These test the mechanism, never which variant wins (that depends on the machine)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image

from edgecls.runtime import Classifier
from edgecls.runtime.variant_choice import (THROUGHPUT_BATCH, VariantChoice, _cache_path, _write_cache, cache_key,
                                            choose_variant, fastest, read_cache)

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


def _seed(art, winner: str, int8_factor: float, threads: int = 1, spin: bool = True) -> None:
    """A cache entry as if this machine had measured int8 at `int8_factor` x fp32's time."""
    measured = {"fp32": {"latency_ms": 0.02, "per_image_ms": 0.01},
                "int8": {"latency_ms": 0.02 * int8_factor, "per_image_ms": 0.01 * int8_factor}}
    _write_cache(cache_key(_files(art), CPU, threads, spin), winner, measured, {})


def test_batch_64_is_timed_through_the_per_core_shards_classifier_uses(art, monkeypatch):
    from edgecls.runtime.inference import ShardedRunner

    calls: dict[int, int] = {}
    real_run = ShardedRunner.run

    def counting_run(self, pixels, prepare):
        calls[len(pixels)] = calls.get(len(pixels), 0) + 1
        return real_run(self, pixels, prepare)

    monkeypatch.setattr(ShardedRunner, "run", counting_run)
    choice = choose_variant("mnist", "cpu", 2, art, budget_s=0.05, use_cache=False)
    assert set(choice.measured) == {"fp32", "int8"}
    assert calls.get(THROUGHPUT_BATCH, 0) >= 2 * 4  # warm-up + >= 3 rounds, for both variants
    assert set(calls) == {THROUGHPUT_BATCH}  # batch 1 never goes through the shards
    calls.clear()
    choose_variant("mnist", "cpu", 1, art, budget_s=0.05, use_cache=False)
    assert not calls  # one thread: nothing to shard


def test_auto_measures_once_then_reads_the_cache(art):
    first = choose_variant("mnist", "cpu", 1, art, budget_s=0.05)
    assert set(first.measured) == {"fp32", "int8"} and not first.cached  # fp16 is never a CPU candidate
    assert first.variant in first.measured and first.path == _files(art)[first.variant]
    assert "fp16" in first.skipped and "GPU" in first.skipped["fp16"]
    assert all(m["latency_ms"] > 0 and m["per_image_ms"] > 0 for m in first.measured.values())
    assert first.variant == fastest(first.measured)
    entry = read_cache(cache_key(_files(art), CPU, 1))
    assert entry is not None and entry["variant"] == first.variant
    second = choose_variant("mnist", "cpu", 1, art, budget_s=0.05)
    assert second.cached and second.variant == first.variant and second.measured == first.measured
    clf = Classifier("mnist", device="cpu", threads=1, workspace=art)  # auto is the default
    assert clf.variant_choice.cached and clf.path == first.path and clf.info.variant == first.variant
    assert clf.speed_note.startswith(f"variant auto: {first.variant}")
    assert clf.run(np.zeros((2, 28, 28, 1), np.uint8)).shape == (2, 10)


@pytest.mark.parametrize("content", ["{not json", "", '{"key": 1}', "[]",
                                     "REPLACE_NEGATIVE", "REPLACE_UNKNOWN_VARIANT"])
def test_corrupt_cache_is_measured_again_and_rewritten(art, content):
    key = cache_key(_files(art), CPU, 1)
    path = _cache_path(key)
    _seed(art, "fp32", 2.0)
    good = json.loads(path.read_text())
    if content == "REPLACE_NEGATIVE":
        good["measured"]["int8"]["latency_ms"] = -1.0
        content = json.dumps(good)
    elif content == "REPLACE_UNKNOWN_VARIANT":
        good["variant"] = "int4"
        content = json.dumps(good)
    path.write_text(content)
    assert read_cache(key) is None
    choice = choose_variant("mnist", "cpu", 1, art, budget_s=0.05)
    assert not choice.cached and set(choice.measured) == {"fp32", "int8"}
    assert read_cache(key)["measured"] == choice.measured  # rewritten whole


def test_cache_key_follows_files_threads_and_spinning(art):
    files = _files(art)
    base = cache_key(files, CPU, 1)
    assert base == cache_key(files, CPU, 1)
    assert base != cache_key(files, CPU, 2) and base != cache_key(files, CPU, 1, spin=False)
    assert base != cache_key(files, "CUDAExecutionProvider", 1)
    assert "onnxruntime" in base and base["cpu"]
    files["int8"].write_bytes(files["int8"].read_bytes() + b"\0")  # a re-exported model is measured again
    assert cache_key(files, CPU, 1)["files"]["int8"] != base["files"]["int8"]


def test_int8_not_faster_is_said_and_auto_keeps_fp32(art):
    _seed(art, "fp32", 1.25)
    clf = Classifier("mnist", device="cpu", threads=1, workspace=art)
    assert clf.variant_choice.cached and clf.info.variant == "fp32"
    assert "int8 is NOT faster than fp32 on this machine: 0.80x at batch 1" in clf.speed_note
    with pytest.warns(RuntimeWarning, match="int8 is not faster than fp32 on this machine"):
        explicit = Classifier("mnist", variant="int8", device="cpu", threads=1, workspace=art)
    assert explicit.info.variant == "int8"  # asked for, given; only warned
    _seed(art, "int8", 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # int8 faster: nothing to warn about
        assert Classifier("mnist", variant="int8", device="cpu", threads=1, workspace=art).speed_note is None
    assert "int8 is faster than fp32" in Classifier("mnist", device="cpu", threads=1, workspace=art).speed_note


def test_variant_without_validation_is_never_picked(art):
    import onnx

    path = _files(art)["int8"]
    model = onnx.load(str(path))
    for prop in model.metadata_props:
        if prop.key == "edgecls.validation":
            prop.value = "{}"
    onnx.save(model, str(path))
    choice = choose_variant("mnist", "cpu", 1, art, budget_s=0.05)
    assert choice.variant == "fp32" and not choice.measured and "gate" in choice.skipped["int8"]


def test_fastest_and_note_are_plain_arithmetic():
    m = {"fp32": {"latency_ms": 1.0, "per_image_ms": 1.0}, "int8": {"latency_ms": 2.0, "per_image_ms": 0.4}}
    assert fastest(m) == "int8"  # sqrt(0.8) < 1
    choice = VariantChoice("int8", None, m)  # type: ignore[arg-type]
    assert choice.int8_speedup == {"latency": 0.5, "throughput": 2.5}
    assert "NOT faster" in choice.note and f"2.50x at batch {THROUGHPUT_BATCH}" in choice.note


def test_infer_says_when_int8_is_not_faster(art, tmp_path, mnist):
    import os

    _seed(art, "fp32", 1.5, threads=os.cpu_count(), spin=False)  # infer: default threads, idle threads not spinning
    image = tmp_path / "7.png"
    Image.fromarray(mnist.test.x[0, ..., 0]).save(image)
    proc = subprocess.run([sys.executable, "-m", "edgecls", "infer", str(image), "--workspace", str(art),
                           "--device", "cpu", "--json"], capture_output=True, text=True, timeout=120,
                          env={**os.environ})
    assert proc.returncode == 0, proc.stderr
    assert "int8 is NOT faster than fp32 on this machine" in proc.stderr and "mnist.onnx (fp32)" in proc.stderr
    assert json.loads(proc.stdout)[0]["label"] == str(mnist.test.y[0])
    forced = subprocess.run([sys.executable, "-m", "edgecls", "infer", str(image), "--workspace", str(art),
                             "--device", "cpu", "--int8"], capture_output=True, text=True, timeout=120)
    assert forced.returncode == 0 and "mnist.int8.onnx (int8)" in forced.stderr
    assert "int8 is not faster than fp32 on this machine" in forced.stderr and "Traceback" not in forced.stderr
