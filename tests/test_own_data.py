"""Issue 17's promise, end to end: a user's class-per-folder images go train -> export --int8 -> eval -> bench
-> report -> infer in a fresh workspace with no data or location flags, every step on the model's own held-out
test split, and the shipped artifacts/ stay byte-identical."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from edgecls.cli import app

REPO = Path(__file__).resolve().parent.parent
CLASSES = ("circle", "square", "triangle")
PER_CLASS = 40


def make_shapes(root: Path, seed: int = 0) -> None:
    """3 classes of noisy coloured shapes on dark backgrounds, 40x40 RGB, half PNG and half JPEG."""
    rng = np.random.default_rng(seed)
    for cls in CLASSES:
        (root / cls).mkdir(parents=True)
        for i in range(PER_CLASS):
            im = Image.new("RGB", (40, 40), tuple(int(v) for v in rng.integers(0, 60, 3)))
            draw = ImageDraw.Draw(im)
            x, y = (int(v) for v in rng.integers(14, 26, 2))
            r, colour = int(rng.integers(7, 12)), tuple(int(v) for v in rng.integers(150, 256, 3))
            if cls == "circle":
                draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
            elif cls == "square":
                draw.rectangle([x - r, y - r, x + r, y + r], fill=colour)
            else:
                draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=colour)
            pixels = np.asarray(im).astype(np.int16) + rng.integers(-20, 21, (40, 40, 3))
            Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(root / cls / f"{i:03d}.{'png' if i % 2 else 'jpg'}")


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_own_folder_end_to_end_without_flags(tmp_path, monkeypatch, data_dir):
    shipped_before = tree_digest(REPO / "artifacts")
    monkeypatch.chdir(tmp_path)  # a user's project folder: the workspace is ./workspace
    monkeypatch.delenv("EDGECLS_WORKSPACE", raising=False)
    monkeypatch.setenv("EDGECLS_DATA", str(data_dir))
    make_shapes(tmp_path / "shapes")
    runner = CliRunner()

    def edgecls(*args: str, codes: tuple[int, ...] = (0,)):
        result = runner.invoke(app, list(args))
        assert result.exit_code in codes, f"edgecls {' '.join(args)} -> {result.exit_code}\n{result.output}"
        return result

    edgecls("train", "shapes", "--data", "shapes", "--arch", "mnist", "--epochs", "3")
    work = tmp_path / "workspace" / "shapes"
    card = json.loads((work / "metrics.json").read_text())
    data = card["data"]
    assert data["kind"] == "folder" and data["path"] == str((tmp_path / "shapes").resolve())
    test_files = [f for files in data["test_files"].values() for f in files]
    n_test = len(test_files)
    assert n_test == card["test"]["num_samples"] == round(0.2 * PER_CLASS) * len(CLASSES)
    assert all((tmp_path / "shapes" / f).is_file() for f in test_files)
    assert card["training"]["train_samples"] + card["validation"]["num_samples"] == PER_CLASS * len(CLASSES) - n_test

    exported = edgecls("export", "shapes", "--int8", codes=(0, 1))
    report = json.loads((work / "shapes.export.json").read_text())
    assert report["validation_data"].endswith(f"held-out test split ({n_test} images)")  # never training images
    assert (work / "shapes.onnx").is_file()
    if exported.exit_code == 1:  # a tiny model may miss the int8 gate: then it says so, and writes no int8
        from edgecls.exporters.errors import GateError  # (the CLI prints this one line on stderr, exit 1)

        assert isinstance(exported.exception, GateError) and "validation gate failed: int8" in str(exported.exception)
        assert not (work / "shapes.int8.onnx").exists()
    else:
        assert (work / "shapes.int8.onnx").is_file()
    assert all(not Path(v["path"]).is_absolute() for v in report["variants"])

    scored = json.loads(edgecls("eval", "shapes", "--json").stdout)
    assert scored["num_samples"] == n_test and scored["split"] == "held-out test split"
    assert scored["accuracy"] == pytest.approx(card["test"]["accuracy"], abs=1e-6)

    edgecls("bench", "shapes", "--batch-sizes", "1,8", "--repeats", "1")
    bench = json.loads((work / "bench-cpu.json").read_text())
    assert bench["samples"] == n_test and not any(r["error"] for r in bench["rows"])
    assert {"Keras", "ONNX fp32"} <= {r["label"] for r in bench["rows"]}

    edgecls("report", "shapes")
    assert (work / "report.html").stat().st_size > 10_000 and (work / "figures" / "per_class.png").is_file()

    edgecls("validate", str(work / "shapes.onnx"))
    rows = json.loads(edgecls("infer", "shapes/circle", "--model", "shapes", "--json").stdout)
    assert len(rows) == PER_CLASS and {r["label"] for r in rows} <= set(CLASSES)

    # a shipped model's export and bench go to the workspace too, never into the package (report: same resolver)
    edgecls("export", "mnist", "--eval-limit", "500")
    edgecls("bench", "mnist", "--limit", "200", "--batch-sizes", "1", "--repeats", "1")
    mine = tmp_path / "workspace" / "mnist"
    assert {"mnist.onnx", "mnist.export.json", "bench-cpu.md"} <= {p.name for p in mine.iterdir()}
    assert tree_digest(REPO / "artifacts") == shipped_before
