"""The same image as a path, a str, bytes, a PIL image or a uint8 array goes through the same declared
preprocessing: compared on PROBABILITIES, with images the preprocessing changes a lot (ink on white paper, a small
digit off-centre on a big page, a wide photo, JPEG), so a form that skips or reorders a step shows. Every image is
first checked to be one whose answer the preprocessing moves (else the comparison would prove nothing). Also
through the stream that `edgecls infer` runs (files decoded in worker processes, in-memory sources in threads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from edgecls.runtime import Classifier
from edgecls.runtime.preprocess import load_pixels
from edgecls.runtime.store import find_onnx
from edgecls.runtime.stream import classify_stream

SAME = 1e-5  # one image, one batch, every form: the same pixels, so the same probabilities
MOVED = 0.2  # the preprocessing must move some probability at least this much, or the image proves nothing


def forms(path: Path) -> dict[str, object]:
    """The one image in each form a caller may hand over; the array is the decoded file, as users get it."""
    decoded = Image.open(path)
    decoded.load()
    return {"path": path, "str": str(path), "bytes": path.read_bytes(), "PIL": Image.open(path),
            "PIL (decoded, RGB)": decoded.convert("RGB"), "uint8 array": np.asarray(decoded),
            "float array 0-1": np.asarray(decoded).astype(np.float32) / 255}


def _save(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


def digit_images(folder: Path, digit: np.ndarray) -> list[Path]:
    """A handwritten digit (28x28, white on black) as users photograph and scan it."""
    ink = 255 - digit  # dark ink on white paper
    rng = np.random.default_rng(0)
    page = np.clip(rng.normal(232, 6, (300, 220)), 0, 255).astype(np.uint8)  # grey-white paper with grain
    big = np.asarray(Image.fromarray(ink).resize((84, 84), Image.Resampling.BICUBIC))
    page[30:114, 20:104] = np.minimum(page[30:114, 20:104], big)  # a small digit high on the left of the page
    scan = Image.fromarray(page)
    return [
        _save(Image.fromarray(ink), folder / "light.png"),
        _save(scan, folder / "page.png"),
        _save(scan, folder / "page.jpg", quality=80),
        _save(scan.convert("RGB"), folder / "page-rgb.png"),
    ]


def photo_images(folder: Path) -> list[Path]:
    """Wide and tall pictures with the object off the centre line, as phones take them."""
    rng = np.random.default_rng(1)
    paths = []
    for name, size in (("wide", (320, 120)), ("tall", (90, 260))):
        image = Image.fromarray(rng.integers(60, 200, (size[1], size[0], 3), dtype=np.uint8)).filter(
            ImageFilter.GaussianBlur(6))
        draw = ImageDraw.Draw(image)
        draw.ellipse([size[0] * 0.05, size[1] * 0.05, size[0] * 0.35, size[1] * 0.4], fill=(250, 40, 30))
        draw.rectangle([size[0] * 0.6, size[1] * 0.55, size[0] * 0.95, size[1] * 0.95], fill=(20, 30, 230))
        paths.append(_save(image, folder / f"{name}.png"))
        paths.append(_save(image, folder / f"{name}.jpg", quality=75))
    return paths


@pytest.fixture(scope="module")
def cases(tmp_path_factory, mnist) -> list[tuple[Classifier, Path]]:
    folder = tmp_path_factory.mktemp("forms")
    digits = Classifier(find_onnx("mnist", "fp32"), device="cpu")
    photos = Classifier(find_onnx("cifar10", "fp32"), device="cpu")
    return ([(digits, p) for p in digit_images(folder, mnist.test.x[0, ..., 0])]
            + [(photos, p) for p in photo_images(folder)])


def _stretched(clf: Classifier, path: Path) -> np.ndarray:
    """The answer without the declared preprocessing: the file stretched to the input size."""
    return clf.run(load_pixels(path, clf.spec)[None])[0]


def test_the_preprocessing_matters_for_every_test_image(cases):
    for clf, path in cases:
        declared = clf.predict(path)[0].probabilities
        moved = np.abs(declared - _stretched(clf, path)).max()
        assert moved > MOVED, f"{path.name}: preprocessing moves probabilities by only {moved:.3f} on {clf.path.name}"


def test_every_form_gives_the_same_probabilities_in_one_batch(cases):
    for clf, path in cases:
        given = forms(path)
        got = dict(zip(given, (p.probabilities for p in clf.predict(list(given.values())))))
        for form, probs in got.items():
            diff = np.abs(probs - got["path"]).max()
            assert diff <= SAME, f"{path.name} as {form}: probabilities differ from the file's by {diff:.4f}"


def test_every_form_gives_the_same_probabilities_alone(cases):
    """One source per call: the batch-1 route (bound buffers) with each form."""
    for clf, path in cases:
        reference = clf.predict([path, path])[0].probabilities  # the batched route
        for form, source in forms(path).items():
            probs = clf.predict(source)[0].probabilities
            diff = np.abs(probs - reference).max()
            assert diff <= 1e-4, f"{path.name} as {form}, alone: differs from the batch by {diff:.5f}"


def test_load_gives_the_model_ready_pixels_of_every_form(cases):
    for clf, path in cases:
        given = forms(path)
        expected = clf.load(path)
        assert np.array_equal(clf.load_many(list(given.values())), np.stack([expected] * len(given)))
        for form, source in given.items():
            assert np.array_equal(clf.load(source), expected), f"{path.name} as {form}: other pixels"


@pytest.mark.parametrize("workers", [1, 2])
def test_the_infer_stream_gives_the_same_probabilities(cases, workers):
    """Paths decoded in worker processes (workers > 1), in-memory forms in threads: one answer."""
    for clf, path in cases:
        reference = clf.predict(path)[0].probabilities
        paths = [path] * 3
        memory = [v for k, v in forms(path).items() if k not in ("path", "str")]
        for sources in (paths, memory):
            for result in classify_stream(clf, sources, batch_size=2, workers=workers):
                assert result.ok, result.error
                diff = np.abs(result.prediction.probabilities - reference).max()
                assert diff <= 1e-4, f"{path.name} via the stream ({type(sources[0]).__name__}): {diff:.5f}"


def test_bytes_of_a_jpeg_with_exif_orientation_are_turned_upright_like_the_file(tmp_path, cases):
    """A phone JPEG stored sideways with an orientation tag: every form sees it upright."""
    clf, wide = next((c, p) for c, p in cases if p.name == "wide.png")
    upright = Image.open(wide).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated 90 degrees clockwise: viewers turn it back
    stored = tmp_path / "sideways.jpg"
    upright.transpose(Image.Transpose.ROTATE_90).save(stored, quality=95, exif=exif.tobytes())
    reference = clf.predict(stored)[0].probabilities
    for form, source in (("bytes", stored.read_bytes()), ("PIL", Image.open(stored))):
        diff = np.abs(clf.predict(source)[0].probabilities - reference).max()
        assert diff <= SAME, f"sideways JPEG as {form}: {diff:.4f}"
    unturned = np.abs(clf.run(clf.load(np.asarray(Image.open(stored)))[None])[0] - reference).max()
    assert unturned > SAME, "the orientation tag changes nothing for this image: the test proves nothing"
