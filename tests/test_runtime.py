"""The embeddable runtime on the shipped mnist ONNX models and real MNIST images."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecls.runtime.classifier import Classifier
from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.files import iter_image_files
from edgecls.runtime.preprocess import MAX_PIXELS
from edgecls.runtime.stream import classify_stream

REPO = Path(__file__).resolve().parent.parent
MNIST_ONNX = REPO / "artifacts" / "mnist" / "mnist.onnx"
MNIST_INT8 = REPO / "artifacts" / "mnist" / "mnist.int8.onnx"


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return Classifier(MNIST_INT8, device="cpu")


@pytest.fixture(scope="module")
def digits(tmp_path_factory, mnist) -> Path:
    folder = tmp_path_factory.mktemp("digits")
    for i in range(300):
        Image.fromarray(mnist.test.x[i, ..., 0]).save(folder / f"{i:04d}.png")
    return folder


def test_labels_and_spec_come_from_the_model(clf):
    assert clf.labels == tuple("0123456789") and clf.info.variant == "int8"
    assert (clf.spec.height, clf.spec.width, clf.spec.channels) == (28, 28, 1)
    assert clf.provider == "CPUExecutionProvider"
    assert Classifier("mnist", variant="int8").path == MNIST_INT8  # shipped models resolve by name


def test_every_input_form_gives_the_same_answer(clf, mnist, digits):
    img = mnist.test.x[0]
    path = digits / "0000.png"
    sources = [path, str(path), path.read_bytes(), Image.open(path), img, img[..., 0],
               img.astype(np.float32) / 255.0, Image.fromarray(img[..., 0]).convert("RGB"),
               np.asarray(Image.fromarray(img[..., 0]).resize((56, 56)))]
    predictions = clf.predict(sources, top_k=3)
    assert [p.label for p in predictions] == ["7"] * len(sources)
    assert all(len(p.top_k) == 3 and p.top_k[0][0] == "7" for p in predictions)
    assert clf.predict(path)[0].label == "7"  # a single source works too
    assert np.isclose(predictions[0].probabilities.sum(), 1.0, atol=1e-3)


def test_batch_api_matches_the_exporters_validation(mnist):
    """The runtime reproduces the accuracy the exporter recorded in the model's metadata, through the
    model's own declared preprocessing (what the exporter validated)."""
    for path in (MNIST_ONNX, MNIST_INT8):
        clf = Classifier(path, device="cpu")
        pixels = clf.load_many(list(mnist.test.x))
        probs = np.concatenate([clf.run(pixels[i : i + 1000]) for i in range(0, 10000, 1000)])
        accuracy = float((probs.argmax(1) == mnist.test.y).mean())
        assert clf.info.validation["samples"] == 10000
        assert accuracy == pytest.approx(clf.info.validation["accuracy"], abs=1e-4)


def test_run_accepts_grey_batches_without_channel_axis(clf, mnist):
    a = clf.run(mnist.test.x[:8])
    b = clf.run(mnist.test.x[:8, ..., 0])
    assert np.array_equal(a, b)
    with pytest.raises(EdgeclsError, match="expected images"):
        clf.run(np.zeros((2, 32, 32, 3), np.uint8))


def _bad_corpus(folder: Path) -> dict[str, str]:
    """Every way a file can be bad, and the reason the runtime must give."""
    folder.mkdir()
    good = io.BytesIO()
    Image.fromarray(np.full((28, 28), 200, np.uint8)).save(good, format="PNG")
    (folder / "a_good.png").write_bytes(good.getvalue())
    (folder / "b_zero.png").write_bytes(b"")
    (folder / "c_text.jpg").write_text("hello, not an image")
    (folder / "d_truncated.png").write_bytes(good.getvalue()[:50])
    side = int(MAX_PIXELS**0.5) + 64
    Image.new("1", (side, side)).save(folder / "e_bomb.png")
    (folder / "f_dir.png").mkdir()  # a directory named like an image: not readable as one
    return {"b_zero.png": "empty file", "c_text.jpg": "not an image", "d_truncated.png": "truncated",
            "e_bomb.png": "too large", "f_dir.png": "not a regular file"}


def test_bad_files_are_reported_and_skipped(clf, tmp_path):
    expected = _bad_corpus(tmp_path / "bad")
    files = sorted(str(p) for p in (tmp_path / "bad").iterdir())
    results = list(classify_stream(clf, files, batch_size=4, workers=2))
    assert [Path(r.source).name for r in results] == [Path(f).name for f in files]  # order kept
    by_name = {Path(r.source).name: r for r in results}
    assert by_name["a_good.png"].ok
    for name, reason in expected.items():
        assert not by_name[name].ok and reason in by_name[name].error, (name, by_name[name].error)


def test_stream_is_lazy_and_bounded(clf, mnist):
    pulled = 0

    def sources():
        nonlocal pulled
        for i in range(5000):
            pulled += 1
            yield mnist.test.x[i % 100]

    stream = classify_stream(clf, sources(), batch_size=64, workers=2, prefetch=2)
    next(stream)
    assert pulled <= 64 * 4  # only a few batches in flight, not the whole input
    assert sum(1 for _ in stream) == 4999


def test_file_discovery(digits, tmp_path):
    nested = tmp_path / "tree" / "sub"
    nested.mkdir(parents=True)
    (tmp_path / "tree" / "top.png").write_bytes((digits / "0000.png").read_bytes())
    (nested / "deep.png").write_bytes((digits / "0001.png").read_bytes())
    (nested / "notes.txt").write_text("skip me")
    assert [Path(p).name for p in iter_image_files([tmp_path / "tree"])] == ["top.png"]
    assert [Path(p).name for p in iter_image_files([tmp_path / "tree"], recursive=True)] == ["top.png", "deep.png"]
    assert len(list(iter_image_files([str(digits / "00[0-4]*.png")]))) == 50
    assert list(iter_image_files([tmp_path / "missing.png"])) == [str(tmp_path / "missing.png")]


def test_device_selection():
    import onnxruntime as ort

    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    # auto means CUDA exactly when onnxruntime offers it, else the CPU; cpu always means the CPU
    assert Classifier(MNIST_ONNX, device="auto").provider == ("CUDAExecutionProvider" if has_cuda else "CPUExecutionProvider")
    assert Classifier(MNIST_ONNX, device="cpu").provider == "CPUExecutionProvider"
    if not has_cuda:
        with pytest.raises(EdgeclsError, match="no CUDA support"):
            Classifier(MNIST_ONNX, device="cuda")
    with pytest.raises(EdgeclsError, match="unknown device"):
        Classifier(MNIST_ONNX, device="tpu")


def test_missing_and_non_edgecls_models(tmp_path):
    with pytest.raises(EdgeclsError, match="no such model file"):
        Classifier(tmp_path / "nope.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"garbage")
    with pytest.raises(EdgeclsError, match="not an ONNX model|cannot load ONNX model"):
        Classifier(tmp_path / "junk.onnx")
    with pytest.raises(EdgeclsError, match=r"did you mean 'emotion'\?") as err:  # a typo is not a model to export
        Classifier("emotion-xl")
    assert "export it with" not in str(err.value)


def test_runtime_never_imports_tensorflow():
    code = ("import sys; from edgecls.runtime import Classifier; from edgecls.runtime.stream import "
            "classify_stream; import edgecls.runtime.files; Classifier('mnist', variant='int8'); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx', 'onnx')]; "
            "print(bad); sys.exit(bool(bad))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _infer(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgecls", "infer", *args], capture_output=True, text=True,
                          timeout=300)


def test_infer_outputs(digits, tmp_path, mnist):
    for fmt in ("csv", "json", "jsonl"):
        out = tmp_path / f"preds.{fmt}"
        proc = _infer(str(digits), "--int8", "-o", str(out), "-k", "2")
        assert proc.returncode == 0, proc.stderr
        assert re.search(r"300 images: 300 classified( \(\d+ unsure\))?, 0 failed", proc.stderr), proc.stderr
        text = out.read_text()
        if fmt == "csv":
            rows = [line.split(",") for line in text.strip().splitlines()]
            assert rows[0] == ["path", "label", "score", "label_2", "score_2", "unsure", "error"] and len(rows) == 301
            labels = [r[1] for r in rows[1:]]
        elif fmt == "json":
            labels = [r["label"] for r in json.loads(text)]
        else:
            labels = [json.loads(line)["label"] for line in text.splitlines()]
        accuracy = np.mean([int(lbl) == y for lbl, y in zip(labels, mnist.test.y[:300])])
        assert accuracy > 0.97
    assert not list(tmp_path.glob("*.partial"))


def test_infer_table_and_exit_codes(digits, tmp_path):
    proc = _infer(str(digits / "0000.png"), str(digits / "0001.png"))
    assert proc.returncode == 0 and "7" in proc.stdout
    _bad_corpus(tmp_path / "bad")
    proc = _infer(str(tmp_path / "bad"), "--json")
    assert proc.returncode == 2  # finished, some inputs unreadable
    rows = json.loads(proc.stdout)
    assert sum(r["error"] is None for r in rows) == 1 and len(rows) == 5  # f_dir.png is a folder: not listed
    assert "failed" in proc.stderr and "Traceback" not in proc.stderr
    proc = _infer(str(tmp_path / "nothing-here"))
    assert proc.returncode == 2 and "no such file" in proc.stderr  # a named input that cannot be read
