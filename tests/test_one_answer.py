"""One model name, one answer: the same images through `edgecls infer`, `Classifier`, a real `edgecls serve` on
loopback and a real local Ray instance (`edgecls infer --engine ray`) give identical labels, identical unsure
flags and the same scores, each naming the variant it ran. The images include MNIST test digits where the
shipped model's top two classes are nearly (or exactly) tied, where any difference in how a path runs the
model would show first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from serving import require, start_server

httpx = require("httpx", "pip install -e '.[dev]'")
require("starlette", "edgecls serve needs the serve extra: pip install -e '.[serve]'")
require("ray", "edgecls infer --engine ray needs the ray extra: pip install -e '.[ray]'")
pq = require("pyarrow.parquet", "the ray extra brings pyarrow")

from edgecls.runtime import Classifier  # noqa: E402

pytestmark = pytest.mark.slow

NEAR_TIES = 8  # lowest top-two margins, per variant the policy may choose
ORDINARY = 24
SCORE_TOLERANCE = 1e-5  # one file, run in batches of different sizes: float sums may reorder, nothing more


def _margins(variant: str, x: np.ndarray) -> np.ndarray:
    clf = Classifier("mnist", variant=variant, device="cpu", tune="off")
    top2 = np.sort(clf.run(clf.load_many(list(x))), axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


@pytest.fixture(scope="module")
def images(tmp_path_factory, mnist) -> tuple[Path, dict[str, float]]:
    """A folder of MNIST test PNGs: the near ties of fp32 and of int8, ordinary digits, and two images the
    unsure flag must catch (a blank page, a mid-grey photo-like noise)."""
    folder = tmp_path_factory.mktemp("same-answer")
    x = mnist.test.x[..., 0]
    margins = {v: _margins(v, x) for v in ("fp32", "int8")}
    chosen = {int(i) for m in margins.values() for i in np.argsort(m, kind="stable")[:NEAR_TIES]}
    ties = {f"tie-{i:05d}.png": float(min(m[i] for m in margins.values())) for i in chosen}
    for i in chosen:
        Image.fromarray(x[i]).save(folder / f"tie-{i:05d}.png")
    for i in range(ORDINARY):
        Image.fromarray(x[100 + i]).save(folder / f"digit-{100 + i:05d}.png")
    Image.fromarray(np.full((28, 28), 255, np.uint8)).save(folder / "blank.png")
    noise = np.random.default_rng(0).integers(60, 200, (64, 64), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "noise.png")
    assert min(ties.values()) < 1e-3  # near ties indeed (int8 even has exact ones on this test set)
    return folder, ties


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return subprocess.run([sys.executable, "-m", "edgecls", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def _row(label: str, score: float, unsure: bool, second: tuple) -> dict:
    return {"label": label, "score": score, "unsure": bool(unsure), "label_2": second[0], "score_2": second[1]}


def _by_classifier(folder: Path) -> tuple[str, dict[str, dict]]:
    clf = Classifier("mnist", device="cpu")  # auto: measured here first; every process below reads that cache
    paths = sorted(folder.iterdir())
    batch = clf.predict(paths, top_k=2)  # one batch, split per core
    singles = [clf.predict(p, top_k=2)[0] for p in paths]  # batch 1, bound buffers
    for a, b in zip(batch, singles):
        assert (a.label, a.unsure) == (b.label, b.unsure) and a.score == pytest.approx(b.score, abs=SCORE_TOLERANCE)
    return clf.choice.path.name, {p.name: _row(r.label, r.score, r.unsure, r.top_k[1]) for p, r in zip(paths, batch)}


def _by_infer(folder: Path) -> tuple[str, dict[str, dict]]:
    proc = _cli("infer", str(folder), "--json", "-k", "1000")  # capped once at the model's 10 labels
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert {len(r["top_k"]) for r in rows} == {10}
    return proc.stderr, {Path(r["path"]).name: _row(r["label"], r["score"], r["unsure"],
                                                    (r["top_k"][1]["label"], r["top_k"][1]["score"])) for r in rows}


def _by_server(folder: Path, log: Path) -> tuple[dict, dict[str, dict]]:
    server = start_server(["mnist"], ["--no-access-log"], log)
    try:
        meta = httpx.get(f"{server.url}/v2/models/mnist", timeout=30).json()

        def classify(path: Path) -> tuple[str, dict]:
            answer = httpx.post(f"{server.url}/v2/models/mnist/classify?top_k=2", content=path.read_bytes(),
                                timeout=60).json()["predictions"][0]
            return path.name, _row(answer["label"], answer["score"], answer["unsure"],
                                   (answer["top_k"][1]["label"], answer["top_k"][1]["score"]))

        with ThreadPoolExecutor(8) as pool:  # concurrent requests: merged into micro-batches of varying size
            rows = dict(pool.map(classify, sorted(folder.iterdir())))
    finally:
        server.stop()
    return meta, rows


def _by_ray(folder: Path, out: Path) -> tuple[subprocess.CompletedProcess, dict[str, dict], dict]:
    proc = _cli("infer", str(folder), "--engine", "ray", "-k", "1000", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    table = pq.read_table(out)
    assert [c for c in table.column_names if c.startswith("label")] == ["label"] + [f"label_{k}" for k in range(2, 11)]
    rows = {Path(r["path"]).name: _row(r["label"], r["score"], r["unsure"], (r["label_2"], r["score_2"]))
            for r in table.to_pylist()}
    return proc, rows, {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}


def _assert_same(reference: dict[str, dict], other: dict[str, dict], where: str, ties: dict[str, float]) -> None:
    assert set(other) == set(reference), where
    for name, want in reference.items():
        got = other[name]
        context = f"{where} {name} (top-two margin {ties.get(name, 'ordinary')})"
        assert (got["label"], got["unsure"], got["label_2"]) == (want["label"], want["unsure"], want["label_2"]), \
            (context, got, want)
        assert got["score"] == pytest.approx(want["score"], abs=SCORE_TOLERANCE), context
        assert got["score_2"] == pytest.approx(want["score_2"], abs=SCORE_TOLERANCE), context


def test_infer_classifier_serve_and_ray_give_one_answer(images, tmp_path):
    folder, ties = images
    model_file, reference = _by_classifier(folder)
    variant = Classifier("mnist", device="cpu", tune="cached").info.variant
    assert {r["unsure"] for r in reference.values()} == {True, False}  # the flag is compared both ways

    infer_log, infer_rows = _by_infer(folder)
    _assert_same(reference, infer_rows, "edgecls infer", ties)
    assert f"with {model_file} ({variant}, auto:" in infer_log  # the summary line names what ran

    meta, served = _by_server(folder, tmp_path / "serve.log")
    _assert_same(reference, served, "edgecls serve", ties)
    assert (meta["parameters"]["file"], meta["parameters"]["variant"]) == (model_file, variant)

    proc, ray_rows, parquet_meta = _by_ray(folder, tmp_path / "ray.parquet")
    _assert_same(reference, ray_rows, "edgecls infer --engine ray", ties)
    assert f"with {model_file} ({variant}, auto:" in proc.stderr and "on Ray" in proc.stderr
    assert (parquet_meta["edgecls.model_file"], parquet_meta["edgecls.variant"]) == (model_file, variant)
    assert json.loads(parquet_meta["edgecls.variant_choice"])["requested"] == "auto"
    assert "constructor arguments" not in proc.stderr and "core_worker" not in proc.stderr  # Ray's own noise
