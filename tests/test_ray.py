"""Batch inference on a real local Ray cluster (a head node and a worker node, started here), not a mock.

One cluster serves the module; the worker-kill test runs last and leaves a replacement node behind.
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

# Ray starts fast and quietly: no dashboard, no usage report, no token set-up noise between our processes.
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
try:
    import ray
    import ray.data
    from ray.cluster_utils import Cluster
except ImportError:
    if os.environ.get("CI"):
        raise
    pytest.skip("the ray extra is not installed (pip install -e '.[ray]')", allow_module_level=True)

from edgecls.distributed import classify_dataset  # noqa: E402
from edgecls.runtime import Classifier  # noqa: E402
from edgecls.runtime.files import iter_image_files  # noqa: E402
from edgecls.runtime.stream import classify_stream  # noqa: E402

MNIST_IMAGES = 3000
CIFAR_IMAGES = 500
NODE_ARGS = {"num_cpus": 1, "object_store_memory": 200 * 1024**2}


def _bad_files(folder: Path, source: bytes) -> list[str]:
    (folder / "garbage.png").write_bytes(b"this is not an image")
    (folder / "empty.png").write_bytes(b"")
    (folder / "truncated.png").write_bytes(source[: len(source) // 2])
    return ["garbage.png", "empty.png", "truncated.png"]


@pytest.fixture(scope="module")
def digits(tmp_path_factory, mnist) -> Path:
    """3,000 MNIST test digits as PNG files, plus three bad files."""
    folder = tmp_path_factory.mktemp("digits")
    for i in range(MNIST_IMAGES):
        Image.fromarray(mnist.test.x[i, ..., 0]).save(folder / f"{i:04d}.png")
    _bad_files(folder, (folder / "0000.png").read_bytes())
    return folder


@pytest.fixture(scope="module")
def photos(tmp_path_factory, data_dir) -> Path:
    """500 CIFAR-10 test JPEGs exactly as shipped in the archive (every 20th, all classes), plus bad files."""
    folder = tmp_path_factory.mktemp("photos")
    with tarfile.open(data_dir / "cifar10.tar.gz") as tar:
        tests = (m for m in tar if m.isfile() and m.name.startswith("test/"))
        for n, member in enumerate(tests):
            if n % 20 == 0:
                (folder / member.name.replace("/", "_")).write_bytes(tar.extractfile(member).read())
    _bad_files(folder, next(folder.glob("*.jpg")).read_bytes())
    assert len(list(folder.glob("test_*.jpg"))) == CIFAR_IMAGES
    return folder


@pytest.fixture(scope="module")
def cluster():
    """A head node and one worker node (1 CPU each), with this process as the driver."""
    c = Cluster(initialize_head=True, head_node_args={**NODE_ARGS, "include_dashboard": False})
    try:
        worker = c.add_node(**NODE_ARGS)
        ray.init(address=c.address, log_to_driver=False, logging_level="ERROR")
        c.wait_for_nodes()
        ray.data.DataContext.get_current().enable_progress_bars = False
        c.worker = worker
        yield c
    finally:
        ray.shutdown()
        c.shutdown()


def _local(model: str, folder_or_paths, top_k: int, variant: str = "auto") -> dict:
    clf = Classifier(model, variant=variant, device="cpu")
    paths = iter_image_files([folder_or_paths]) if isinstance(folder_or_paths, Path) else folder_or_paths
    return {os.path.abspath(r.source): r for r in classify_stream(clf, paths, batch_size=256, top_k=top_k)}


def _assert_same(rows: list[dict], local: dict, top_k: int) -> None:
    """Every file answered exactly once, with the local answer."""
    counts = Counter(r["path"] for r in rows)
    assert set(counts) == set(local) and set(counts.values()) == {1}
    for row in rows:
        want = local[row["path"]]
        if want.prediction is None:
            assert row["label"] is None and row["score"] is None and row["error"], row
            continue
        p = want.prediction
        assert row["error"] is None and row["label"] == p.label and row["unsure"] == p.unsure, row
        assert row["score"] == pytest.approx(p.score, abs=1e-6)
        for k in range(2, top_k + 1):
            assert row[f"label_{k}"] == p.top_k[k - 1][0]
            assert row[f"score_{k}"] == pytest.approx(p.top_k[k - 1][1], abs=1e-6)


def test_library_answers_equal_local_stream(cluster, digits):
    """read_binary_files -> classify_dataset on two nodes gives local classify_stream's answers, file for file."""
    ds = ray.data.read_binary_files(str(digits), include_paths=True, num_cpus=0)  # the actors hold every CPU
    ds = ds.map_batches(lambda b: {**b, "row_id": np.arange(len(b["path"]))}, batch_format="numpy")
    rows = classify_dataset(ds, "mnist", variant="int8", device="cpu", actors=2, batch_size=128, top_k=3).take_all()
    assert len(rows) == MNIST_IMAGES + 3
    assert "bytes" not in rows[0] and "row_id" in rows[0]  # the caller's columns ride along, the bytes do not
    _assert_same(rows, _local("mnist", digits, 3, "int8"), top_k=3)
    assert 0 < sum(bool(r["unsure"]) for r in rows) < MNIST_IMAGES // 10  # the unsure flag is compared, both ways
    errors = {Path(r["path"]).name: r["error"] for r in rows if r["error"]}
    assert set(errors) == {"garbage.png", "empty.png", "truncated.png"}
    assert "not an image" in errors["garbage.png"] and "truncated" in errors["truncated.png"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return subprocess.run([sys.executable, "-m", "edgecls", "infer", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_cli_parquet_from_folder_and_listing(cluster, digits, tmp_path):
    """Folder + .txt listing (relative path, a missing file) -> a Parquet folder equal to local infer."""
    import pyarrow.parquet as pq

    listing = digits.parent / "listing.txt"
    listing.write_text(f"# two more\n{digits.name}/0001.png\n\n{digits.name}/gone.png\n")
    out = tmp_path / "preds"
    proc = _cli(str(digits), str(listing), "--engine", "ray", "--ray-address", cluster.address,
                "--model", "mnist", "--actors", "2", "-o", str(out))
    assert proc.returncode == 2, proc.stderr  # exit 2: some files failed (as local infer)
    assert re.search(rf"{MNIST_IMAGES + 5} images: {MNIST_IMAGES + 1} classified( \(\d+ unsure\))?, 4 failed",
                     proc.stderr), proc.stderr
    assert "Traceback" not in proc.stderr and not list(out.glob("*.partial"))
    rows = pq.read_table(out).to_pylist()
    twice = str(digits / "0001.png")
    assert Counter(r["path"] for r in rows)[twice] == 2  # listed twice: answered twice
    rows = [r for r in rows if r["path"] != twice] + [next(r for r in rows if r["path"] == twice)]
    local = _local("mnist", digits, 1)
    local[str(digits / "gone.png")] = next(iter(_local("mnist", [str(digits / "gone.png")], 1).values()))
    _assert_same(rows, local, top_k=1)
    assert next(r for r in rows if r["path"].endswith("gone.png"))["error"] == "no such file"


def test_cli_csv_from_uri_equals_local_csv(cluster, photos, tmp_path):
    """A file:// URI read by Ray Data -> CSV with the same cells as local `edgecls infer -o x.csv`."""
    ray_csv, local_csv = tmp_path / "ray.csv", tmp_path / "local.csv"
    proc = _cli(f"file://{photos}", "--engine", "ray", "--ray-address", cluster.address, "--model", "cifar10",
                "--int8", "-k", "2", "--actors", "2", "-o", str(ray_csv))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert re.search(rf"{CIFAR_IMAGES + 3} images: {CIFAR_IMAGES} classified( \(\d+ unsure\))?, 3 failed",
                     proc.stderr), proc.stderr
    proc = _cli(str(photos), "--model", "cifar10", "--int8", "-k", "2", "-o", str(local_csv))
    assert proc.returncode == 2, proc.stderr

    def table(path: Path) -> dict:
        rows = list(csv.reader(io.StringIO(path.read_text())))
        return rows[0], {os.path.abspath(r[0]): r[1:] for r in rows[1:]}

    (ray_header, ray_rows), (local_header, local_rows) = table(ray_csv), table(local_csv)
    assert ray_header == local_header == ["path", "label", "score", "label_2", "score_2", "unsure", "error"]
    assert set(ray_rows) == set(local_rows) and len(ray_rows) == CIFAR_IMAGES + 3
    good = [p for p, r in local_rows.items() if not r[-1]]
    assert len(good) == CIFAR_IMAGES and all(ray_rows[p] == local_rows[p] for p in good)
    assert all(ray_rows[p][-1] for p in local_rows if p not in good)  # bad files: an error either way


def test_worker_node_killed_mid_run(cluster, digits):
    """The worker node dies while its actor works; a replacement joins; every file is answered exactly once."""
    from edgecls.distributed.sources import image_dataset, resolve_sources

    sources = resolve_sources([str(digits)])
    ds = classify_dataset(image_dataset(sources, batch_size=64), "mnist", device="cpu", actors=2, batch_size=64)
    rows: list[dict] = []
    answered_at_kill = None
    for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        rows.extend(batch.select(["path", "label", "score", "unsure", "error"]).to_pylist())
        if answered_at_kill is None and len(rows) >= 256:
            answered_at_kill = len(rows)
            cluster.remove_node(cluster.worker, allow_graceful=False)  # SIGKILL: raylet, its actor, its objects
            cluster.worker = cluster.add_node(**NODE_ARGS)
    assert answered_at_kill is not None and answered_at_kill < len(sources.paths) // 2
    alive = [n for n in ray.nodes() if n["Alive"]]
    assert len(alive) == 2 and len(ray.nodes()) == 3  # the killed node is gone, its replacement joined
    _assert_same(rows, _local("mnist", digits, 1), top_k=1)


def test_bad_requests_fail_before_work_with_one_line(cluster, digits, tmp_path):
    """Unreachable cluster, unreadable SOURCE, missing extra, bad output: exit 1, one line, no traceback."""
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "notes.txt").write_text("no images here")
    cases = [
        ([f"file://{tmp_path}/texts", "--ray-address", cluster.address, "-o", str(tmp_path / "f")],
         "no images found under file://"),
        ([str(digits), "--ray-address", "127.0.0.1:1", "-o", str(tmp_path / "a")],
         "cannot reach the Ray cluster at 127.0.0.1:1"),
        ([str(tmp_path / "nowhere"), "-o", str(tmp_path / "b")], "nowhere: no such file or folder"),
        ([f"file://{tmp_path}/nowhere", "-o", str(tmp_path / "c")], "nowhere: no such file or folder"),
        ([str(tmp_path / "missing.txt"), "-o", str(tmp_path / "d")], "missing.txt: cannot read the listing"),
        ([str(digits), "-o", str(digits)], "output folder exists and is not empty"),
        ([str(digits), "-o", str(tmp_path / "preds.json")], "writes Parquet (a folder or FILE.parquet) or CSV"),
        ([str(digits)], "give --output"),
    ]
    for args, message in cases:
        proc = _cli(*args, "--engine", "ray")
        assert proc.returncode == 1 and message in proc.stderr, (args, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stdout + proc.stderr and "classifying" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["texts"]  # nothing written
    no_ray = ("import sys; sys.modules['ray'] = None; sys.argv = ['edgecls', 'infer', %r, '--engine', 'ray', "
              "'-o', %r]; from edgecls.cli import main; main()" % (str(digits), str(tmp_path / "e")))
    proc = subprocess.run([sys.executable, "-c", no_ray], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "pip install 'edgecls[ray]'" in proc.stderr, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_importing_the_package_does_not_import_ray():
    code = "import sys, edgecls.distributed; sys.exit('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_sources_are_listed_before_the_cluster(tmp_path):
    """Listing rules, without Ray: relative listing entries, comments, URIs kept, non-UTF-8 names skipped."""
    from edgecls.distributed.sources import resolve_sources

    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("a.png", "b.jpg", "notes.txt"):
        (folder / name).write_bytes(b"x")
    (folder / os.fsdecode(b"bad\xff.png")).write_bytes(b"x")
    (tmp_path / "list.txt").write_text("# comment\nimgs/a.png\n\ns3://bucket/c.png\n")
    found = resolve_sources([str(folder), str(tmp_path / "list.txt")])
    assert found.paths == [str(folder / "a.png"), str(folder / "b.jpg"), str(folder / "a.png"), "s3://bucket/c.png"]
    assert [os.fsencode(s.path) for s in found.skipped] == [os.fsencode(folder) + b"/bad\xff.png"]
    assert "not valid UTF-8" in found.skipped[0].reason and found.count == 4
