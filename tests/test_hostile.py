"""Hostile input, one test group per failure found by the hardening probe (issue 12). Real files, real FIFOs
and symlinks in tmp dirs, real models tampered with the onnx package, CLI runs in subprocesses (exit codes,
stderr never holding a traceback). Anything that could block (FIFOs, Ctrl-C) runs with a timeout."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecls.runtime import Classifier, EdgeclsError
from edgecls.runtime.files import iter_image_files
from edgecls.runtime.metadata import ModelInfo
from edgecls.runtime.outputs import OutputError, check_output
from edgecls.runtime.preprocess import load_pixels

REPO = Path(__file__).resolve().parent.parent
MNIST = REPO / "artifacts" / "mnist" / "mnist.onnx"
TIMEOUT = 120  # seconds: any CLI run that takes longer is a hang


def edgecls(*args: str, prefix: tuple[str, ...] = (), timeout: float = TIMEOUT, **kw) -> subprocess.CompletedProcess:
    """Run the real command (through main(), as users do); bytes out, so non-UTF-8 names survive."""
    proc = subprocess.run([*prefix, sys.executable, "-m", "edgecls", *args], capture_output=True, timeout=timeout, **kw)
    both = proc.stdout + proc.stderr
    assert b"Traceback" not in both, both.decode(errors="replace")
    return proc


def text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _png(path: Path | bytes, value: int = 0, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    pixels = np.clip(rng.integers(0, 60, (28, 28)) + value, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    with open(path, "wb") as fh:
        fh.write(buf.getvalue())


@pytest.fixture()
def folder(tmp_path) -> Path:
    """Three good images."""
    root = tmp_path / "imgs"
    root.mkdir()
    for i in range(3):
        _png(root / f"img{i}.png", seed=i)
    return root


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return Classifier(MNIST)


# 1. --output over an input ---------------------------------------------------------------------------------

def test_1_output_never_overwrites_an_input(folder, tmp_path):
    target = folder / "img0.png"
    before = target.read_bytes()
    proc = edgecls("infer", str(folder), "--output", str(target), "--format", "csv")
    assert proc.returncode == 1 and b"would be read as an image" in proc.stderr
    proc = edgecls("infer", str(target), str(folder / "img1.png"), "--output", str(target), "--format", "csv", "--force")
    assert proc.returncode == 1 and b"is an input of this run" in proc.stderr
    proc = edgecls("infer", str(folder) + "/img*.png", "-o", str(folder / "img9.png"), "--format", "csv")
    assert proc.returncode == 1 and b"would be read as an image" in proc.stderr
    assert target.read_bytes() == before and not (folder / "img9.png").exists()
    model = tmp_path / "m.onnx"
    shutil.copy(MNIST, model)
    proc = edgecls("infer", str(folder), "--model", str(model), "-o", str(model), "--format", "json", "--force")
    assert proc.returncode == 1 and b"is an input of this run" in proc.stderr
    assert model.read_bytes() == MNIST.read_bytes()


def test_1_existing_files_need_force_and_writes_are_atomic(folder, tmp_path):
    notes = tmp_path / "notes.csv"
    notes.write_text("my,own,data\n1,2,3\n")
    proc = edgecls("infer", str(folder), "-o", str(notes))
    assert proc.returncode == 1 and b"--force" in proc.stderr and notes.read_text() == "my,own,data\n1,2,3\n"
    proc = edgecls("infer", str(folder), "-o", str(notes), "--force")
    assert proc.returncode == 0 and notes.read_text().startswith("path,label,score")
    proc = edgecls("infer", str(folder), "-o", str(notes))  # an edgecls predictions file: replaced freely
    assert proc.returncode == 0 and len(notes.read_text().splitlines()) == 4
    assert not list(tmp_path.glob("*.partial"))


# 2. symlink loops --------------------------------------------------------------------------------------------

def test_2_symlink_loops_are_reported_not_fatal(folder):
    os.symlink("self.png", folder / "self.png")  # a self-looping link
    sub = folder / "sub"
    sub.mkdir()
    _png(sub / "deep.png")
    os.symlink("..", sub / "up")  # a folder loop, for --recursive
    skipped = []
    files = list(iter_image_files([folder], recursive=True, on_skip=skipped.append))
    assert sorted(Path(f).name for f in files) == ["deep.png", "img0.png", "img1.png", "img2.png"]
    assert {Path(s.path).name: s.reason for s in skipped}["self.png"] == "symlink loop"
    assert any("already visited" in s.reason for s in skipped)
    proc = edgecls("infer", str(folder), "-r", "--json")
    assert proc.returncode == 2
    assert len(json.loads(proc.stdout)) == 4 and b"self.png: symlink loop" in proc.stderr


# 3. file names that are not UTF-8 ----------------------------------------------------------------------------

def test_3_non_utf8_file_names_in_every_format(folder, tmp_path):
    raw = os.path.join(os.fsencode(folder), b"caf\xe9-\xff.png")
    _png(raw, seed=7)
    expected = os.fsdecode(raw)  # what the walk yields (surrogate-escaped)
    out = tmp_path / "p.csv"
    assert edgecls("infer", str(folder), "-o", str(out)).returncode == 0
    assert raw in out.read_bytes()  # written byte for byte
    with open(out, newline="", encoding="utf-8", errors="surrogateescape") as fh:
        paths = [row[0] for row in csv.reader(fh)][1:]
    assert expected in paths and os.path.isfile(os.fsencode(expected))
    for fmt in ("json", "jsonl"):
        out = tmp_path / f"p.{fmt}"
        assert edgecls("infer", str(folder), "-o", str(out)).returncode == 0
        rows = json.loads(out.read_bytes()) if fmt == "json" else [json.loads(line) for line in out.read_bytes().splitlines()]
        assert expected in [r["path"] for r in rows]
    proc = edgecls("infer", str(folder), "--format", "csv")  # to stdout
    assert proc.returncode == 0 and raw in proc.stdout
    proc = edgecls("infer", str(folder))  # the table shows it escaped, literally
    assert proc.returncode == 0 and b"caf\\xe9-\\xff.png" in proc.stdout


# 4. FIFOs and devices never block ----------------------------------------------------------------------------

def test_4_fifo_in_folder_or_named_never_hangs(folder):
    fifo = folder / "pipe.png"
    os.mkfifo(fifo)
    proc = edgecls("infer", str(folder), timeout=60)
    assert proc.returncode == 2 and b"pipe.png: not a regular file (a FIFO" in proc.stderr
    assert all(f"/img{i}.png".encode() in proc.stdout for i in range(3))
    proc = edgecls("infer", str(fifo), str(folder / "img0.png"), timeout=60)
    assert proc.returncode == 2 and b"FIFO" in proc.stderr
    if os.path.exists("/dev/zero"):
        proc = edgecls("infer", "/dev/zero", timeout=60)
        assert proc.returncode == 2 and b"character device" in proc.stderr


def test_4_library_load_of_a_fifo_returns_an_error(folder):
    """Classifier.load opens without blocking even when handed a FIFO directly (subprocess: a hang fails)."""
    fifo = folder / "pipe.png"
    os.mkfifo(fifo)
    code = ("import sys; from edgecls.runtime import Classifier, ImageError\n"
            f"try:\n    Classifier({str(MNIST)!r}).load({str(fifo)!r})\n"
            "except ImageError as e:\n    print(e.reason); sys.exit(0)\nsys.exit(3)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "FIFO" in proc.stdout, proc.stderr


# 5, 6, 9. tampered models fail at load, naming the file and the field -----------------------------------------

def _tamper(tmp_path: Path, name: str, meta=None, graph=None) -> Path:
    onnx = pytest.importorskip("onnx")
    model = onnx.load(MNIST)
    if meta is not None:
        props = {p.key: p.value for p in model.metadata_props}
        meta(props)
        del model.metadata_props[:]
        onnx.helper.set_model_props(model, props)
    if graph is not None:
        graph(onnx, model.graph)
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def _labels(value):
    return lambda props: props.__setitem__("edgecls.labels", json.dumps(value))


def _spec(**changes):
    def edit(props):
        spec = json.loads(props["edgecls.input"])
        spec.update(changes)
        props["edgecls.input"] = json.dumps(spec)
    return edit


def _flat_output(onnx, g):
    g.initializer.append(onnx.numpy_helper.from_array(np.array([-1], np.int64), "flat_shape"))
    g.node.append(onnx.helper.make_node("Reshape", [g.output[0].name, "flat_shape"], ["flat"]))
    del g.output[:]
    g.output.append(onnx.helper.make_tensor_value_info("flat", onnx.TensorProto.FLOAT, ["n"]))


def _uint8_input(onnx, g):
    name = g.input[0].name
    for node in g.node:
        for i, x in enumerate(node.input):
            if x == name:
                node.input[i] = name + "_f"
    g.node.insert(0, onnx.helper.make_node("Cast", [name], [name + "_f"], to=onnx.TensorProto.FLOAT))
    g.input[0].type.tensor_type.elem_type = onnx.TensorProto.UINT8


def _two_inputs(onnx, g):
    g.input.append(onnx.helper.make_tensor_value_info("extra", onnx.TensorProto.FLOAT, ["n", 3]))
    g.node.append(onnx.helper.make_node("Identity", ["extra"], ["extra_out"]))
    g.output.append(onnx.helper.make_tensor_value_info("extra_out", onnx.TensorProto.FLOAT, ["n", 3]))


TAMPERED = {  # name: (metadata edit, graph edit, what the error must say)
    "fewer-labels": (_labels([str(i) for i in range(9)]), None, "has 9 class names but output 'probabilities' has 10"),
    "more-labels": (_labels([str(i) for i in range(11)]), None, "has 11 class names"),
    "labels-string": (_labels("0123456789"), None, "edgecls.labels must be a JSON list"),
    "labels-dict": (_labels({str(i): i for i in range(10)}), None, "edgecls.labels must be a JSON list"),
    "labels-ints": (_labels(list(range(10))), None, "must hold strings only"),
    "four-channels": (_spec(channels=4), None, "edgecls.input.channels is 4"),
    "huge-input": (_spec(height=100000, width=100000), None, "edgecls.input.height is 100000"),
    "size-mismatch": (_spec(height=32, width=32), None, "the metadata declares 32x32x1"),
    "text-height": (_spec(height="28"), None, "edgecls.input.height must be an integer"),
    "one-d-output": (None, _flat_output, "(rank 1); expected (batch, classes)"),
    "uint8-input": (None, _uint8_input, "is tensor(uint8); the metadata declares float32"),
    "two-outputs": (None, _two_inputs, "graph inputs are 2"),
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_5_6_9_tampered_models_fail_at_load(case, tmp_path):
    meta, graph, message = TAMPERED[case]
    path = _tamper(tmp_path, case, meta, graph)
    with pytest.raises(EdgeclsError) as info:
        Classifier(path)
    assert str(path) in str(info.value) and message in str(info.value), str(info.value)


def test_5_untampered_copy_loads_and_cli_names_the_field(tmp_path, folder):
    good = _tamper(tmp_path, "control", meta=lambda props: None)  # the tamper route itself breaks nothing
    assert Classifier(good).predict(folder / "img0.png")[0].label in [str(i) for i in range(10)]
    bad = _tamper(tmp_path, "fewer", _labels([str(i) for i in range(9)]))
    proc = edgecls("infer", str(folder), "--model", str(bad))
    assert proc.returncode == 1 and str(bad).encode() in proc.stderr and b"edgecls.labels" in proc.stderr
    assert proc.stderr.count(b"\n") == 1  # one line


def test_6_labels_are_checked_when_metadata_is_parsed():
    meta = ModelInfo(name="m", variant="fp32", labels=("a", "b"),
                     input_spec=Classifier(MNIST).spec).to_metadata()
    for bad in ('"ab"', '{"a": 0}', "[1, 2]", "[]", '["a", "a"]'):
        with pytest.raises(EdgeclsError, match="edgecls.labels"):
            ModelInfo.from_metadata({**meta, "edgecls.labels": bad}, "x.onnx")


# 7. 16-bit images scale by bit depth -------------------------------------------------------------------------

def test_7_dark_16bit_images_stay_dark(tmp_path, clf):
    dark = (np.arange(28 * 28).reshape(28, 28) % 200).astype(np.uint16)  # 16-bit values 0-199: nearly black
    Image.fromarray(dark).save(tmp_path / "dark16.png")
    Image.fromarray(dark).save(tmp_path / "dark16.tif")
    assert Image.open(tmp_path / "dark16.png").mode.startswith("I;16")
    # The decoding layer (the mnist model's declared `levels` step would then stretch any contrast there is).
    for source in (tmp_path / "dark16.png", tmp_path / "dark16.tif", dark):
        pixels = load_pixels(source, clf.spec)
        assert pixels.max() == 0, source  # 199/257 < 1; the old content rule made this a bright image
    bright = (dark.astype(np.uint32) * 300).clip(0, 65535).astype(np.uint16)
    assert np.array_equal(load_pixels(bright, clf.spec)[..., 0], (bright // 257).astype(np.uint8))
    with pytest.raises(EdgeclsError, match="outside 0-255"):
        clf.load(dark.astype(np.int64) * 1000)  # numpy ints beyond 0-255 are refused, not guessed


# 8. bad --output locations: clear, early -----------------------------------------------------------------------

def test_8_bad_output_location_fails_before_any_work(folder, tmp_path):
    for target, message in ((tmp_path / "no" / "such" / "p.csv", b"does not exist"),
                            (tmp_path, b"is a directory")):
        start = time.monotonic()
        proc = edgecls("infer", str(folder), "-o", str(target))
        assert proc.returncode == 1 and message in proc.stderr
        assert b"images:" not in proc.stderr  # nothing was classified
        assert time.monotonic() - start < TIMEOUT
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(OutputError, match="is a directory"):
        check_output(tmp_path / "d.csv", [folder])
    os.mkfifo(tmp_path / "fifo.csv")
    with pytest.raises(OutputError, match="not a regular file"):
        check_output(tmp_path / "fifo.csv", [folder])


# 10. unreadable folders and dangling symlinks are reported, exit 2 ---------------------------------------------

def _without_root_powers() -> tuple[str, ...]:
    """As root, permission bits only bite without CAP_DAC_OVERRIDE: drop every capability for the run."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a folder unreadable")
    return (setpriv, "--bounding-set=-all", "--inh-caps=-all")


def test_10_unreadable_folder_and_dangling_symlink(folder):
    os.symlink("gone.png", folder / "dangling.png")
    locked = folder / "locked"
    locked.mkdir()
    _png(locked / "hidden.png")
    locked.chmod(0)
    try:
        proc = edgecls("infer", str(folder), "-r", prefix=_without_root_powers())
    finally:
        locked.chmod(0o755)
    err = text(proc.stderr)
    assert proc.returncode == 2, err
    assert "dangling.png: dangling symlink (-> gone.png)" in err
    assert f"skipped {locked}: folder not readable (permission denied)" in err
    assert re.search(r"3 classified( \(\d+ unsure\))?, 0 failed, 2 skipped", err), err


# 11. markup in paths and messages is printed literally ---------------------------------------------------------

def test_11_markup_in_paths_is_printed_literally(tmp_path):
    weird = tmp_path / "[" / "b]"  # the path holds "[/b]"
    weird.mkdir(parents=True)
    (weird / "x[gpu].png").write_bytes(b"not an image")
    _png(weird / "[bold]ok.png")
    proc = edgecls("infer", str(weird))
    err = text(proc.stderr)
    assert proc.returncode == 2
    assert f"failed {weird / 'x[gpu].png'}: not an image" in err and "[/b]" in err
    assert "[bold]ok.png" in text(proc.stdout)
    proc = edgecls("infer", str(weird), "--model", str(weird / "m[red].onnx"))
    assert proc.returncode == 1 and f"{weird / 'm[red].onnx'}: no such model file" in text(proc.stderr)


# 12. a re-export replaces the variant set as one ----------------------------------------------------------------

@pytest.mark.slow
def test_12_reexport_removes_variants_it_did_not_rebuild(tmp_path):
    import keras
    from keras import layers

    from edgecls.exporters.export import ExportJob, run_export
    from edgecls.exporters.validate import EvalData

    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1))
    x = layers.Flatten()(layers.Conv2D(4, 3, activation="relu")(layers.Rescaling(1 / 255)(inputs)))
    model = keras.Model(inputs, layers.Dense(3, activation="softmax")(x))
    pixels = np.random.default_rng(0).integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)
    stale = {v: tmp_path / f"tiny{s}" for v, s in (("int8", ".int8.onnx"), ("fp16", ".fp16.onnx"))}
    for path in stale.values():
        shutil.copy(MNIST, path)  # variants of an earlier, different model
    report = run_export(ExportJob(model=model, name="tiny", labels=("a", "b", "c"), out_dir=tmp_path,
                                  eval_data=EvalData(pixels, None, "random")))
    assert (tmp_path / "tiny.onnx").is_file()
    assert not any(p.exists() for p in stale.values())
    assert sorted(report["removed_stale"]) == sorted(p.name for p in stale.values())  # relative to the report
    assert Classifier(tmp_path / "tiny.onnx").labels == ("a", "b", "c")


# 13. Ctrl-C, --topk, bench, models ------------------------------------------------------------------------------

# Where the child run stops and waits for Ctrl-C: the signal lands at exactly that point, never before or after it.
PAUSE_AT = {
    "loading the model": ("edgecls.runtime.engine", "create_session", "before", None),
    "mid-run": ("edgecls.runtime.outputs", "PredictionFile.write", "after", 100),  # the 100th row written
    "output in place": ("edgecls.cli.infer", "_report", "before", None),  # the output is committed, the summary next
}
PAUSED_CHILD = """
import importlib, os, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (a background job starts it ignored)
module, name, when, at_call, ready, alarm = {args!r}
owner = importlib.import_module(module)
for part in name.split(".")[:-1]:
    owner = getattr(owner, part)
real, calls = getattr(owner, name.split(".")[-1]), [0]
def pause():  # say "ready", then wait until the run's own SIGINT handler has run (it may raise KeyboardInterrupt)
    handled, own = [], signal.getsignal(signal.SIGINT)
    def handler(signum, frame):
        handled.append(signum)
        if callable(own):
            own(signum, frame)
    signal.signal(signal.SIGINT, handler)  # before "ready": a signal sent at once is never missed
    signal.alarm(alarm)  # backstop: SIGALRM ends the child if no signal comes
    open(ready + ".part", "w").close()
    os.rename(ready + ".part", ready)
    try:
        while not handled:
            signal.pause()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGINT, own)
def hooked(*args, **kw):
    calls[0] += 1
    chosen = calls[0] == (at_call or 1)
    if when == "before" and chosen:
        pause()
    out = real(*args, **kw)
    if when == "after" and chosen:
        fh = getattr(args[0], "fh", None)
        if fh is not None and not fh.closed:
            fh.flush()  # the rows written so far reach the file before the signal
        pause()
    return out
setattr(owner, name.split(".")[-1], hooked)
sys.argv = ["edgecls", *{argv!r}]
from edgecls.cli import main
main()
"""


def _ctrl_c_at(where: str, argv: list[str], ready: Path) -> subprocess.CompletedProcess:
    """The real `edgecls ARGV` (through main(), in its own session), stopped at `where`; then Ctrl-C as a terminal
    sends it: SIGINT to the whole process group, decoding workers included."""
    code = PAUSED_CHILD.format(args=(*PAUSE_AT[where], str(ready), 30), argv=argv)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ready.exists(), f"the run never reached {where}: {proc.communicate()[1].decode()[-2000:]}"
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hung after Ctrl-C at {where}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert b"Traceback" not in stdout + stderr, stderr.decode(errors="replace")
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("many")
    for i in range(300):
        _png(root / f"{i:04d}.png", seed=i)
    return root


@pytest.mark.parametrize("where", PAUSE_AT)
def test_13_ctrl_c_at_start_mid_run_and_after_the_output_is_in_place(where, many, tmp_path):
    out = tmp_path / "out.csv"
    run = _ctrl_c_at(where, ["infer", str(many), "-b", "64", "--workers", "2", "-o", str(out)], tmp_path / "ready")
    partial = tmp_path / "out.csv.partial"
    files = sorted(str(p) for p in many.iterdir())
    if where == "output in place":  # the run had finished: it is not interrupted, its output is complete
        assert run.returncode == 0, text(run.stderr)
        assert [r[0] for r in list(csv.reader(out.open()))[1:]] == files and not partial.exists()
        assert b"interrupted" not in run.stderr
        return
    assert run.returncode == 130, text(run.stderr)
    assert not out.exists()  # an interrupted run never leaves a complete-looking output
    if where == "loading the model":  # nothing classified: no rows kept
        assert not partial.exists() or list(csv.reader(partial.open()))[1:] == []
    else:  # the rows done so far are kept aside, each one whole: exactly the 100 written before the signal
        assert [r[0] for r in list(csv.reader(partial.open()))[1:]] == files[:100]


def test_13_topk_is_capped_at_the_number_of_labels(folder, tmp_path):
    out = tmp_path / "k.csv"
    proc = edgecls("infer", str(folder), "--topk", "1000", "-o", str(out))
    assert proc.returncode == 0 and b"showing all 10" in proc.stderr
    header = out.read_text().splitlines()[0].split(",")
    assert header[-3:] == ["score_10", "unsure", "error"] and len(header) == 3 + 2 * 9 + 2
    proc = edgecls("infer", str(folder), "--topk", "1000")
    assert proc.returncode == 0 and b"top 10" in proc.stdout and b"top 1000" not in proc.stdout


def test_13_models_in_a_pipe_never_truncates_names():
    env = {**os.environ, "COLUMNS": "80"}
    proc = edgecls("models", env=env)
    rows = json.loads(edgecls("models", "--json").stdout)
    assert proc.returncode == 0 and rows
    listed = text(proc.stdout)
    for row in rows:
        assert f" {row['name']} " in listed, row["name"]
    assert "…" not in listed and "..." not in listed


def test_13_bench_status_counts_failed_rows():
    from edgecls.bench.runner import failed_rows

    assert failed_rows({"rows": [{"error": "x"}, {"error": "y"}]}) == (2, 2)
    assert failed_rows({"rows": [{"error": None}, {"error": "y"}]}) == (1, 2)


@pytest.mark.slow
def test_13_bench_exits_nonzero_when_every_row_fails(tmp_path, data_dir):
    art = tmp_path / "artifacts" / "mnist"
    art.mkdir(parents=True)
    shutil.copy(REPO / "artifacts" / "mnist" / "metrics.json", art / "metrics.json")
    (art / "model.keras").write_bytes(b"not a keras model")
    (art / "mnist.onnx").write_bytes(b"not an onnx model")
    proc = edgecls("bench", "mnist", "--workspace", str(tmp_path / "artifacts"), "--data-dir", str(data_dir),
                   "--device", "cpu", "--limit", "32", "--batch-sizes", "1", "--repeats", "1", timeout=600)
    assert proc.returncode == 1, text(proc.stderr)
    assert b"none of the" in proc.stderr and not list(art.glob("bench-*"))

