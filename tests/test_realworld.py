"""Images as users take them, through the shipped models' declared preprocessing and the unsure flag."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecls.runtime import Classifier, EdgeclsError
from edgecls.runtime.preprocess import load_pixels
from edgecls.runtime.stream import classify_stream
from edgecls.runtime.transforms import PRESETS, Pipeline

REPO = Path(__file__).resolve().parent.parent
MNIST_ONNX = REPO / "artifacts" / "mnist" / "mnist.onnx"


def _with_metadata(tmp_path: Path, **values: object) -> Path:
    import onnx

    model = onnx.load(str(MNIST_ONNX))
    props = {p.key: p.value for p in model.metadata_props}
    for key, value in values.items():
        if value is None:
            props.pop(f"edgecls.{key}", None)
        else:
            props[f"edgecls.{key}"] = value if isinstance(value, str) else json.dumps(value)
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, props)
    out = tmp_path / "tampered.onnx"
    onnx.save(model, str(out))
    return out


def _on_paper(digit: np.ndarray, canvas: int = 160, paper: int = 235) -> Image.Image:
    """An MNIST digit as dark ink on light paper, small, off-centre on a big canvas."""
    ink = Image.fromarray(digit[..., 0]).resize((70, 70), Image.Resampling.BICUBIC)
    page = np.full((canvas, canvas), paper, np.float32)
    alpha = np.asarray(ink, np.float32) / 255.0
    page[20:90, canvas - 90 : canvas - 20] = paper * (1 - alpha) + 25 * alpha
    return Image.fromarray(page.astype(np.uint8))


def test_shipped_digit_model_declares_its_preprocessing():
    clf = Classifier("mnist", device="cpu")
    assert clf.pipeline == Pipeline.parse(PRESETS["digits"])
    assert clf.unsure_rule is not None and clf.unsure_rule.statistic == "midtone_fraction"
    assert 0.0 < clf.unsure_rule.min_confidence < 1.0


def test_ink_on_paper_is_read_as_the_digit(mnist, tmp_path):
    clf = Classifier("mnist", device="cpu")
    picks = [int(np.flatnonzero(mnist.test.y == d)[0]) for d in range(10)]
    for i in picks:
        image = _on_paper(mnist.test.x[i])
        for fmt in ("png", "jpg"):
            path = tmp_path / f"{i}.{fmt}"
            image.convert("RGB").save(path)
        stretched = load_pixels(tmp_path / f"{i}.png", clf.spec)  # what earlier versions fed the model
        assert stretched.mean() > 150  # a bright page: nothing like MNIST
    predictions = clf.predict(sorted(tmp_path.iterdir()))
    truth = [str(mnist.test.y[int(p.stem)]) for p in sorted(tmp_path.iterdir())]
    assert sum(p.label == t for p, t in zip(predictions, truth)) >= 19  # 20 files, both formats


def test_folder_stream_equals_one_by_one(mnist, tmp_path):
    clf = Classifier("mnist", device="cpu")
    for i in range(24):  # mixed sizes and polarities: several groups in one decode chunk
        image = _on_paper(mnist.test.x[i], canvas=120 + 20 * (i % 3)) if i % 2 else Image.fromarray(mnist.test.x[i, ..., 0])
        image.save(tmp_path / f"{i:02d}.png")
    files = sorted(str(p) for p in tmp_path.iterdir())
    streamed = list(classify_stream(clf, files, batch_size=8, workers=2))
    single = [clf.predict(f)[0] for f in files]
    assert [r.prediction.label for r in streamed] == [p.label for p in single]
    assert np.allclose([r.prediction.score for r in streamed], [p.score for p in single], atol=1e-6)


def test_blank_and_one_colour_images_are_classified_and_unsure():
    clf = Classifier("mnist", variant="int8", device="cpu")
    images = [np.zeros((28, 28), np.uint8), np.full((64, 64), 255, np.uint8), np.full((50, 30, 3), 90, np.uint8)]
    with np.errstate(all="raise"):
        predictions = clf.predict(images)
    assert len(predictions) == 3 and all(p.unsure for p in predictions)


def test_photos_fed_to_the_digit_model_are_mostly_unsure(data_dir):
    from edgecls.data import load_dataset

    cifar = load_dataset("cifar10", data_dir).test.x[:300]
    mnist = load_dataset("mnist", data_dir).test.x[:300]
    clf = Classifier("mnist", device="cpu")
    photos = np.mean([p.unsure for p in clf.predict(list(cifar))])
    digits = np.mean([p.unsure for p in clf.predict(list(mnist))])
    assert photos >= 0.85 and digits <= 0.03


def test_unknown_step_in_metadata_fails_at_load_naming_model_and_step(tmp_path):
    path = _with_metadata(tmp_path, preprocess=[{"op": "polarity"}, {"op": "sharpen", "amount": 2}])
    with pytest.raises(EdgeclsError) as err:
        Classifier(path, device="cpu")
    assert str(path) in str(err.value) and "sharpen" in str(err.value)
    bad = _with_metadata(tmp_path, preprocess=[{"op": "fit", "size": -3}])
    with pytest.raises(EdgeclsError, match="size=-3 is invalid"):
        Classifier(bad, device="cpu")
    with pytest.raises(EdgeclsError, match="unsure"):
        Classifier(_with_metadata(tmp_path, unsure={"min_confidence": 7}), device="cpu")


def test_models_exported_before_declared_preprocessing_keep_stretching(tmp_path, mnist):
    path = _with_metadata(tmp_path, preprocess=None, unsure=None)
    old = Classifier(path, device="cpu")
    assert not old.pipeline.declared
    big = np.kron(mnist.test.x[0, ..., 0], np.ones((3, 3), np.uint8))  # 84x84: stretched back to 28x28
    assert np.array_equal(old.load(big), load_pixels(big, old.spec))
    assert not any(p.unsure for p in old.predict([mnist.test.x[0], np.zeros((28, 28), np.uint8)]))  # no rule


def test_realistic_font_digits(tmp_path):
    """Handwriting fonts training never saw, drawn as users draw; the full figure is in the benchmark."""
    from edgecls.data.realistic import VARIANTS, font_digit_images, test_fonts

    fonts = test_fonts()
    if len(fonts) < 6:
        if os.environ.get("CI"):
            pytest.fail("CI must install the test fonts (see .ci/run)")
        pytest.skip("handwriting test fonts not installed (apt-get install fonts-dkg-handwriting ...)")
    rows = []
    for i, (variant, digit, image) in enumerate(font_digit_images(fonts, 40, seed=99)):
        path = tmp_path / f"{i:04d}.{'jpg' if image.format == 'JPEG' else 'png'}"
        image.save(path)
        rows.append((str(path), variant, digit))
    clf = Classifier("mnist", variant="int8", device="cpu")
    results = list(classify_stream(clf, [r[0] for r in rows], batch_size=64, workers=2))
    ok = np.array([res.prediction.label == str(d) for res, (_, _, d) in zip(results, rows)])
    per_variant = {v.name: ok[[r[1] == v.name for r in rows]].mean() for v in VARIANTS}
    assert ok.mean() >= 0.9, per_variant
    assert min(per_variant.values()) >= 0.8, per_variant


def test_outline_glyphs_are_hollow_and_leave_the_test_renderings_unchanged():
    """Training may draw some font digits hollow (outline fonts); test sets (share 0, the default) stay solid."""
    from edgecls.data.realistic import augment_fonts, font_digit_images, glyph

    fonts = augment_fonts()
    if not fonts:
        pytest.skip("no fonts installed")
    rng = np.random.default_rng(0)
    solid = np.asarray(glyph(1, fonts[0], 96, rng, stroke=4)) > 128
    hollow = np.asarray(glyph(1, fonts[0], 96, rng, stroke=4, outline=True)) > 128
    assert solid.shape == hollow.shape and (hollow & ~solid).sum() == 0  # the contour lies on the solid glyph
    assert hollow.sum() < 0.8 * solid.sum()  # ... and its inside is paper
    before = [np.asarray(im) for _, _, im in font_digit_images(fonts[:2], 3, seed=5)]
    mixed = [np.asarray(im) for _, _, im in font_digit_images(fonts[:2], 3, seed=5, outline_share=1.0)]
    assert not all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(before, mixed))
