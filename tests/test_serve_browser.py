"""The web page of `edgecls serve` in a real headless Chromium (Debian's package, driven by Playwright).

Draws digits on the canvas with mouse strokes and uploads an MNIST test digit; the page must show the label."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from PIL import Image

from serving import require, start_server

require("httpx", "pip install -e '.[dev]'")
require("starlette", "edgecls serve needs the serve extra: pip install -e '.[serve]'")

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# Mouse strokes on the 280x280 canvas (pixels from its top-left corner), drawn like a person would.
STROKES = {
    "7": [[(80, 70), (200, 70), (185, 110), (160, 160), (135, 215)]],
    "0": [[(140, 55), (95, 80), (80, 140), (95, 200), (140, 225), (185, 200), (200, 140), (185, 80), (140, 55)]],
    "1": [[(145, 50), (140, 120), (138, 230)]],
}


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI must test the web page: install Debian's chromium (apt-get install -y chromium)")
        pytest.skip("chromium is not installed (apt-get install -y chromium); the web page test needs a real browser")
    return path


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory):
    chromium = _chromium()
    playwright_api = require("playwright.sync_api", "pip install -e '.[dev]' (Playwright drives the system chromium)")
    root = tmp_path_factory.mktemp("browser")
    server = start_server(["mnist", "cifar10"], ["--max-wait-ms", "1"], root / "server.log")
    try:
        with playwright_api.sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                str(root / "profile"), executable_path=chromium, headless=True, args=CHROMIUM_FLAGS,
                viewport={"width": 900, "height": 700})
            page = context.new_page()
            page.goto(server.url + "/")
            page.wait_for_function("document.querySelectorAll('#model option').length === 2")
            yield page
            context.close()
    finally:
        server.stop()
    assert "Traceback" not in server.log()


def _answers(page) -> int:
    return int(page.get_attribute("#result", "data-answers"))


def _wait_answer(page, before: int) -> None:
    page.wait_for_function(f"Number(document.getElementById('result').dataset.answers) > {before}", timeout=15000)
    assert page.get_attribute("#result", "data-state") == "done", page.text_content("#error")


def _draw(page, strokes) -> None:
    box = page.locator("#pad").bounding_box()
    for stroke in strokes:
        page.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=8)
        page.mouse.up()


@pytest.mark.parametrize("digit", sorted(STROKES))
def test_drawn_digit_is_recognised(browser_page, digit, tmp_path):
    page = browser_page
    page.click("#clear")
    before = _answers(page)
    _draw(page, STROKES[digit])
    _wait_answer(page, before)
    assert page.text_content("#label").strip() == digit
    bars = page.locator("#bars .bar")
    assert bars.count() == 5  # top-5, best first, with percentages
    assert bars.nth(0).locator("span").first.text_content() == digit
    assert page.get_attribute("#result", "data-unsure") in ("true", "false")
    page.screenshot(path=str(tmp_path / f"drawn-{digit}.png"))
    assert (tmp_path / f"drawn-{digit}.png").stat().st_size > 1000


def test_uploaded_digit_shows_its_label(browser_page, data_dir, tmp_path):
    page = browser_page
    with np.load(data_dir / "mnist.npz") as d:
        pixels, label = d["x_test"][1], int(d["y_test"][1])
    assert str(label) not in STROKES  # so the label cannot be left over from a drawing
    page.click("#clear")
    upload = tmp_path / "digit.png"
    Image.fromarray(pixels).resize((112, 112), Image.Resampling.NEAREST).save(upload)
    before = _answers(page)
    page.set_input_files("#file", str(upload))
    _wait_answer(page, before)
    assert page.text_content("#label").strip() == str(label)
    assert page.is_visible("#preview")
    assert not page.is_visible("#unsure")  # a clean test digit is not flagged
    page.screenshot(path=str(tmp_path / "upload.png"), full_page=True)
    assert (tmp_path / "upload.png").stat().st_size > 1000


def test_page_reports_an_undecodable_upload(browser_page, tmp_path):
    page = browser_page
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    before = _answers(page)
    page.set_input_files("#file", str(bad))
    page.wait_for_function(f"Number(document.getElementById('result').dataset.answers) > {before}")
    assert page.get_attribute("#result", "data-state") == "error"
    assert "not an image" in page.text_content("#error") or "corrupt" in page.text_content("#error")


def test_switching_model_updates_the_description(browser_page):
    page = browser_page
    page.select_option("#model", "cifar10")
    page.wait_for_function("document.getElementById('model-info').textContent.includes('airplane')")
    assert "32x32x3" in page.text_content("#model-info")
    page.select_option("#model", "mnist")
    page.wait_for_function("document.getElementById('model-info').textContent.includes('28x28x1')")
