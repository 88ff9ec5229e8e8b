"""`edgecls export --web` bundles in a real headless Chromium (Debian's package, driven by Playwright),
served from a loopback static server, against the Python runtime on the same image files; and the
`--mobile` ORT-format export."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from browser import chromium, chromium_path, ci, static_server

REPO = Path(__file__).resolve().parent.parent
SHIPPED = ("mnist", "fashion", "cifar10", "emotion")
N_TEST = 50
FP32_TOLERANCE = 1e-3


def _need(condition: bool, why: str) -> None:
    if not condition:
        if ci():
            pytest.fail(f"CI must run the web tests: {why}")
        pytest.skip(why)


@pytest.fixture(scope="module")
def runtime_dir():
    from edgecls.exporters.web.runtime_files import VERSION, cached, ensure_runtime

    _need(cached() or shutil.which("npm") is not None,
          f"onnxruntime-web {VERSION} is not cached and npm is missing (apt-get install -y npm)")
    return ensure_runtime()


@pytest.fixture(scope="module")
def site(tmp_path_factory, runtime_dir, data_dir):
    """A static site: one fp32 bundle per shipped model, the default (int8) mnist bundle, and test images."""
    from edgecls.data import load_dataset
    from edgecls.exporters.web import build_web_bundle
    from edgecls.runtime.metadata import read_info

    root = tmp_path_factory.mktemp("site")
    images: dict[str, list[Path]] = {}
    for name in SHIPPED:
        model = REPO / "artifacts" / name / f"{name}.onnx"
        build_web_bundle(model, root / name, runtime_dir=runtime_dir)
        test = load_dataset(read_info(model).dataset, data_dir).test
        folder = root / "images" / name
        folder.mkdir(parents=True)
        images[name] = []
        for i in range(N_TEST):
            pixels = test.x[i]
            path = folder / f"{i}.png"
            Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(path)
            images[name].append(path)
    images["mnist-user"] = _user_like_digits(root / "images" / "mnist-user")
    images["cifar10-large"] = _large_photos(images["cifar10"][:8], root / "images" / "cifar10-large")
    images["mnist-jpeg"] = _jpeg_digits(root / "images" / "mnist-jpeg")
    build_web_bundle(REPO / "artifacts" / "mnist" / "mnist.int8.onnx", root / "mnist-int8", runtime_dir=runtime_dir)
    build_web_bundle(_undeclared_model(root / "legacy.onnx"), root / "legacy", runtime_dir=runtime_dir)
    build_web_bundle(REPO / "artifacts" / "mnist" / "mnist.onnx", root / "mnist-onnx", runtime_dir=runtime_dir,
                     model_format="onnx")
    build_web_bundle(REPO / "artifacts" / "cifar10" / "cifar10.int8.onnx", root / "cifar10-onnx",
                     runtime_dir=runtime_dir, model_format="onnx")
    return root, images


def _user_like_digits(folder: Path) -> list[Path]:
    """Dark ink on paper, big canvases (shrunk by the working-size step), grey noisy paper, white on black;
    handwriting fonts the model never saw. Saved losslessly so both runtimes decode the same pixels."""
    from edgecls.data.realistic import VARIANTS, font_digit_images, test_fonts

    fonts = test_fonts()
    _need(bool(fonts), "handwriting test fonts missing (apt-get install -y fonts-dkg-handwriting fonts-breip)")
    folder.mkdir(parents=True)
    paths = []
    for i, (variant, digit, image) in enumerate(font_digit_images(fonts, per_variant=3, seed=18, variants=VARIANTS)):
        path = folder / f"{i}-{variant}-{digit}.png"
        image.save(path)
        paths.append(path)
    return paths


def _undeclared_model(path: Path) -> Path:
    """mnist without its preprocessing and unsure metadata: what models exported before them look like."""
    import onnx

    model = onnx.load(str(REPO / "artifacts" / "mnist" / "mnist.onnx"))
    keep = [p for p in model.metadata_props if p.key not in ("edgecls.preprocess", "edgecls.unsure")]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    onnx.save(model, str(path))
    return path


def _large_photos(sources: list[Path], folder: Path) -> list[Path]:
    """Photo-sized RGB files (upscaled test images with grain, odd sizes up to 9x the model input), so the
    working-size shrink (Pillow's reduce + BILINEAR) runs on 3 channels."""
    rng = np.random.default_rng(5)
    folder.mkdir(parents=True)
    paths = []
    for i, source in enumerate(sources):
        size = (int(rng.integers(140, 300)), int(rng.integers(130, 290)))
        big = np.asarray(Image.open(source).convert("RGB").resize(size, Image.Resampling.BICUBIC), np.float32)
        big = np.clip(big + rng.normal(0, 6, big.shape), 0, 255).astype(np.uint8)
        path = folder / f"{i}.png"
        Image.fromarray(big).save(path)
        paths.append(path)
    return paths


def _jpeg_digits(folder: Path) -> list[Path]:
    """Ink-on-paper digits as JPEG files: each runtime decodes them with its own libjpeg build."""
    from edgecls.data.realistic import VARIANTS, font_digit_images, test_fonts

    fonts = test_fonts()
    _need(bool(fonts), "handwriting test fonts missing (apt-get install -y fonts-dkg-handwriting fonts-breip)")
    folder.mkdir(parents=True)
    paths = []
    jpeg_variants = [v for v in VARIANTS if v.jpeg]
    for i, (variant, digit, image) in enumerate(font_digit_images(fonts, per_variant=5, seed=21,
                                                                  variants=jpeg_variants)):
        path = folder / f"{i}-{variant}-{digit}.jpg"
        image.save(path, quality=80)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def browser(site, tmp_path_factory):
    executable = chromium_path()
    _need(executable is not None, "chromium is not installed (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _need(False, "playwright is missing: pip install -e '.[dev]'")
    root, _ = site
    with static_server(root) as url, chromium(tmp_path_factory.mktemp("profile"), executable) as context:
        yield url, context


def _open(context, url: str):
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_function("['ready', 'done', 'error'].includes(document.getElementById('result').dataset.state)",
                           timeout=60_000)
    assert not errors, errors
    return page


CLASSIFY_ALL = """async (urls) => {
  const out = [];
  for (const url of urls) {
    const r = await window.edgecls.classifyUrl(url);
    out.push({label: r.label, probabilities: r.probabilities, unsure: r.unsure, pixels: r.pixels});
  }
  return out;
}"""


def _compare(browser, site, bundle: str, image_set: str, model_file: str):
    from edgecls.runtime import Classifier

    url, context = browser
    root, images = site
    paths = images[image_set]
    page = _open(context, f"{url}/{bundle}/index.html")
    assert page.get_attribute("#result", "data-state") == "ready", page.text_content("#error")
    web = page.evaluate(CLASSIFY_ALL, [f"{url}/{p.relative_to(root).as_posix()}" for p in paths])
    page.close()
    clf = Classifier(root / model_file if (root / model_file).is_file()
                     else REPO / "artifacts" / model_file.split(".")[0] / model_file)
    python = clf.predict(paths)
    pixels = clf.load_many(paths)
    web_probs = np.array([w["probabilities"] for w in web])
    py_probs = np.stack([p.probabilities for p in python])
    web_pixels = np.array([w["pixels"] for w in web]).reshape(pixels.shape)
    return python, web, py_probs, web_probs, np.abs(web_pixels.astype(int) - pixels.astype(int))


def _assert_same_answers(python, web, py_probs, web_probs) -> None:
    """The page and the Python runtime give the same labels and, within fp32 rounding, the same scores."""
    assert [w["label"] for w in web] == [p.label for p in python]
    assert np.abs(web_probs - py_probs).max() < FP32_TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_browser_matches_python_runtime_on_test_images(browser, site, name):
    python, web, py_probs, web_probs, pixel_diff = _compare(browser, site, name, name, f"{name}.onnx")
    _assert_same_answers(python, web, py_probs, web_probs)
    assert pixel_diff.max() <= 1  # the preprocessing port: same model-ready pixels (float rounding aside)
    assert [w["unsure"] for w in web] == [p.unsure for p in python]


@pytest.mark.slow
def test_browser_matches_python_on_user_like_digits(browser, site):
    python, web, py_probs, web_probs, pixel_diff = _compare(browser, site, "mnist", "mnist-user", "mnist.onnx")
    assert len(web) >= 12
    _assert_same_answers(python, web, py_probs, web_probs)
    assert [w["unsure"] for w in web] == [p.unsure for p in python]


@pytest.mark.slow
def test_browser_matches_python_on_large_rgb_photos(browser, site):
    python, web, py_probs, web_probs, pixel_diff = _compare(browser, site, "cifar10", "cifar10-large", "cifar10.onnx")
    _assert_same_answers(python, web, py_probs, web_probs)
    assert pixel_diff.max() <= 1


@pytest.mark.slow
def test_jpeg_digits_decode_and_classify_alike(browser, site):
    # Chromium and Pillow both decode with libjpeg-turbo's defaults: here the pixels came out identical.
    python, web, py_probs, web_probs, pixel_diff = _compare(browser, site, "mnist", "mnist-jpeg", "mnist.onnx")
    _assert_same_answers(python, web, py_probs, web_probs)
    assert pixel_diff.max() <= 1


@pytest.mark.slow
def test_model_without_declared_preprocessing_is_stretched_as_in_python(browser, site):
    # user-like digits of many sizes: the whole image is resized with Pillow's BILINEAR, ported to JavaScript
    python, web, py_probs, web_probs, pixel_diff = _compare(browser, site, "legacy", "mnist-user", "legacy.onnx")
    _assert_same_answers(python, web, py_probs, web_probs)
    assert pixel_diff.max() == 0  # integer arithmetic throughout: bit for bit


@pytest.mark.slow
def test_default_bundle_ships_int8_and_agrees_on_top1(browser, site):
    import json

    root, _ = site
    meta = json.loads((root / "mnist-int8" / "model.json").read_text())
    assert meta["model_file"] == "mnist.int8.ort" and meta["variant"] == "int8"
    python, web, py_probs, web_probs, _ = _compare(browser, site, "mnist-int8", "mnist", "mnist.int8.onnx")
    assert [w["label"] for w in web] == [p.label for p in python]
    assert np.abs(web_probs - py_probs).max() < 0.05  # int8 kernels differ between x86 and WASM builds


@pytest.mark.slow
def test_onnx_format_bundles_agree(browser, site):
    # The default bundles ship ORT format (tested above); --web-format onnx ships the exported file as is.
    root, _ = site
    assert (root / "mnist-onnx" / "mnist.onnx").is_file() and not (root / "mnist-onnx" / "mnist.ort").exists()
    assert (root / "mnist" / "mnist.ort").is_file() and not (root / "mnist" / "mnist.onnx").exists()
    python, web, py_probs, web_probs, _ = _compare(browser, site, "mnist-onnx", "mnist", "mnist.onnx")
    _assert_same_answers(python, web, py_probs, web_probs)
    python, web, py_probs, web_probs, _ = _compare(browser, site, "cifar10-onnx", "cifar10", "cifar10.int8.onnx")
    assert [w["label"] for w in web] == [p.label for p in python]


@pytest.mark.slow
def test_image_link_shows_label_and_bad_image_shows_a_message(browser, site):
    from edgecls.runtime import Classifier

    url, context = browser
    root, images = site
    path = images["fashion"][3]
    expected = Classifier(REPO / "artifacts" / "fashion" / "fashion.onnx").predict(path)[0]
    page = _open(context, f"{url}/fashion/index.html?image=../images/fashion/{path.name}")
    page.wait_for_function("document.getElementById('result').dataset.state === 'done'", timeout=30_000)
    assert page.text_content("#label") == expected.label
    assert page.locator("#bars .bar").count() == 5
    assert page.is_visible("#unsure") == expected.unsure
    assert not page.is_visible("#draw")  # the drawing pad is for digit models only
    page.close()

    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really an image")
    page = _open(context, f"{url}/mnist/index.html?image=../broken.png")
    assert page.get_attribute("#result", "data-state") == "error"
    assert page.is_visible("#error") and "not an image" in page.text_content("#error")
    before = int(page.get_attribute("#result", "data-answers"))
    page.set_input_files("#file", str(root / "broken.png"))
    page.wait_for_function(f"Number(document.getElementById('result').dataset.answers) > {before}")
    assert "broken.png: not an image" in page.text_content("#error")
    page.close()


@pytest.mark.slow
def test_drawn_digit_is_recognised(browser):
    url, context = browser
    page = _open(context, f"{url}/mnist/index.html")
    box = page.locator("#pad").bounding_box()
    stroke = [(80, 70), (200, 70), (185, 110), (160, 160), (135, 215)]  # a 7
    page.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
    page.mouse.down()
    for x, y in stroke[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=8)
    page.mouse.up()
    page.wait_for_function("document.getElementById('result').dataset.state === 'done'", timeout=30_000)
    assert page.text_content("#label") == "7"
    page.close()


@pytest.mark.slow
def test_dropped_file_is_classified(browser, site):
    from edgecls.runtime import Classifier

    url, context = browser
    root, images = site
    path = images["mnist-user"][0]
    expected = Classifier(REPO / "artifacts" / "mnist" / "mnist.onnx").predict(path)[0].label
    page = _open(context, f"{url}/mnist/index.html")
    transfer = page.evaluate_handle("""async (url) => {
      const blob = await (await fetch(url)).blob();
      const transfer = new DataTransfer();
      transfer.items.add(new File([blob], 'digit.png', {type: 'image/png'}));
      return transfer;
    }""", f"{url}/{path.relative_to(root).as_posix()}")
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    page.wait_for_function("document.getElementById('result').dataset.state === 'done'", timeout=30_000)
    assert page.text_content("#label") == expected
    assert page.is_visible("#preview")
    page.close()


def test_javascript_port_covers_every_python_step():
    # A step or parameter added to the Python registry must be ported to static/preprocess.js too.
    from edgecls.exporters.web.bundle import PORTED_STEPS
    from edgecls.runtime.transforms import TRANSFORMS

    assert {name: frozenset(t.params) for name, t in TRANSFORMS.items()} == PORTED_STEPS
    script = (REPO / "exporters" / "web" / "static" / "preprocess.js").read_text()
    for name, params in PORTED_STEPS.items():
        assert f"  {name}(work, shape, {{" in script
        header = script[script.index(f"  {name}(work, shape, {{"):].split("\n", 1)[0]
        assert all(p in header for p in params), (name, header)


def _custom_op_model(path: Path) -> Path:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    node = helper.make_node("Frobnicate", ["pixels"], ["probabilities"], domain="com.example")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)],
                              ir_version=8)
    onnx.save(model, str(path))
    return path


def test_unsupported_operator_is_named_at_export(tmp_path):
    from edgecls.exporters.errors import ExportError
    from edgecls.exporters.web import build_web_bundle, export_mobile

    model = _custom_op_model(tmp_path / "custom.onnx")
    with pytest.raises(ExportError, match=r"onnxruntime-web .* com\.example:Frobnicate \(opset 1\)"):
        build_web_bundle(model, tmp_path / "web", runtime_dir=tmp_path)
    with pytest.raises(ExportError, match=r"com\.example:Frobnicate"):
        export_mobile([model], tmp_path / "mobile")
    assert not (tmp_path / "web").exists()


def test_mobile_export_writes_validated_ort_and_operator_config(tmp_path):
    import onnxruntime as ort

    from edgecls.exporters.web import export_mobile
    from edgecls.exporters.web.ort_format import sample_inputs

    models = [REPO / "artifacts" / "mnist" / "mnist.onnx", REPO / "artifacts" / "mnist" / "mnist.int8.onnx"]
    result = export_mobile(models, tmp_path)
    assert sorted(result.models) == ["mnist.int8.ort", "mnist.ort"]
    config = (tmp_path / "mnist.required_operators.config").read_text()
    assert "ai.onnx;11;Conv" in config and "com.microsoft;1;" in config and "/tmp" not in config
    batch = sample_inputs((1, 28, 28), n=8, seed=3)
    for onnx_path in models:
        ort_path = tmp_path / (onnx_path.name[: -len(".onnx")] + ".ort")
        assert ort_path.read_bytes()[4:8] == b"ORTM"  # the flatbuffer file identifier of the ORT format
        a = ort.InferenceSession(str(onnx_path)).run(None, {"pixels": batch})[0]
        b = ort.InferenceSession(str(ort_path)).run(None, {"pixels": batch})[0]
        assert np.abs(a - b).max() < 2e-2 and (a.argmax(1) == b.argmax(1)).all()
    assert "labels" in (tmp_path / "model.json").read_text()


def test_cli_packages_an_exported_model_without_reexporting(tmp_path, runtime_dir):
    done = subprocess.run([sys.executable, "-m", "edgecls", "export", "mnist", "--web-dir", str(tmp_path / "web"),
                           "--mobile", "--mobile-dir", str(tmp_path / "mobile")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "already exported" in done.stderr  # a note: stderr (stdout holds results)
    from edgecls.runtime.variant_policy import choose_variant

    bundled = choose_variant("mnist", "auto", device="cpu").path.name.replace(".onnx", ".ort")  # the one policy
    assert (tmp_path / "web" / "index.html").is_file() and (tmp_path / "web" / bundled).is_file()
    assert (tmp_path / "mobile" / "mnist.int8.ort").is_file()
    assert "Traceback" not in done.stderr


def test_missing_npm_gives_a_clear_error(tmp_path, monkeypatch):
    from edgecls.exporters.errors import ExportError
    from edgecls.exporters.web.runtime_files import ensure_runtime

    monkeypatch.setenv("EDGECLS_CACHE_DIR", str(tmp_path / "cache"))  # nothing cached here
    monkeypatch.setenv("PATH", str(tmp_path))  # and no npm on the PATH
    with pytest.raises(ExportError, match=r"npm is not installed.*apt-get install -y npm"):
        ensure_runtime()


def test_cli_errors_name_the_problem(tmp_path):
    done = subprocess.run([sys.executable, "-m", "edgecls", "export", "emotion", "--web-dir", str(tmp_path / "w"),
                           "--web-variant", "fp16"], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "unknown web variant 'fp16'" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr and not (tmp_path / "w").exists()
