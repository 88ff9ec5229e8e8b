"""`edgecls infer --output`: an interrupted or killed run never touches the previous predictions file.

The child stops inside `edgecls.runtime.outputs.PredictionFile.write`, the call infer makes for every row of an
--output file (issue 12 moved the writers there; toolkit/cli/outputs.py only re-exports them). Ctrl-C is now a
request that infer checks between rows, so the child waits in signal.pause() (returns once a handler ran) with an
alarm as a backstop: no test here can wait out a sleep."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
PREVIOUS = b"path,label,score,unsure,error\r\nold.png,3,0.5,false,\r\n"
HEADER = "path,label,score,unsure,error"
REACH_S = 40  # the child loads the model and classifies 10 images (2 shared cores under load)
EXIT_S = 15  # after the signal the child stops at once; its alarm kills it after this anyway


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for i in range(40):
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    return folder


def _child(images: Path, out: Path, ready: Path, after_rows: int) -> subprocess.Popen:
    """`edgecls infer` in a child process that stops after writing `after_rows` rows and waits for a signal."""
    code = textwrap.dedent(f"""
        import os, signal, sys
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (a background job starts it ignored)
        from edgecls.runtime import outputs
        real_write = outputs.PredictionFile.write
        def write(self, result):
            real_write(self, result)
            if self.writer.count == {after_rows}:
                self.fh.flush()
                open({str(ready)!r} + ".part", "w").write(str(self.writer.count))
                os.rename({str(ready)!r} + ".part", {str(ready)!r})
                signal.alarm({EXIT_S})  # backstop: SIGALRM ends the child if no signal comes
                signal.pause()  # returns after infer's SIGINT handler ran; SIGKILL ends it here
                signal.alarm(0)
        outputs.PredictionFile.write = write
        sys.argv = ["edgecls", "infer", {str(images)!r}, "--device", "cpu", "--workers", "1", "--batch-size", "8",
                    "-o", {str(out)!r}]
        from edgecls.cli import main
        main()
    """)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)


def _wait_for(ready: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + REACH_S
    while not ready.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    if not ready.exists():
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"infer never reached the chosen row: {err.decode()[-2000:]}")


@pytest.mark.parametrize("sig, code", [(signal.SIGKILL, -signal.SIGKILL), (signal.SIGINT, 130)])
def test_killed_or_interrupted_infer_keeps_the_previous_output(images, tmp_path, sig, code):
    out = tmp_path / "preds.csv"
    out.write_bytes(PREVIOUS)
    ready = tmp_path / "ready"
    proc = _child(images, out, ready, after_rows=10)
    try:
        _wait_for(ready, proc)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=EXIT_S + 5)
    finally:
        proc.kill()
    assert proc.returncode == code, err.decode()[-2000:]
    assert out.read_bytes() == PREVIOUS  # byte for byte: the new run never wrote to it
    partial = tmp_path / "preds.csv.partial"
    rows = partial.read_text().splitlines()
    # the work so far is kept aside: exactly the 10 rows written (Ctrl-C is honoured before the next row)
    assert rows[0] == HEADER and len(rows) - 1 == 10
    assert [r.split(",")[0] for r in rows[1:]] == [str(images / f"{i:03d}.png") for i in range(10)]
    if sig == signal.SIGINT:
        assert "interrupted" in err.decode() and f"predictions: {partial}" in " ".join(err.decode().split())


def test_completed_infer_replaces_the_previous_output(images, tmp_path):
    out = tmp_path / "preds.csv"
    out.write_bytes(PREVIOUS)
    proc = subprocess.run([sys.executable, "-m", "edgecls", "infer", str(images), "--device", "cpu", "--workers", "1",
                           "-o", str(out)], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    rows = out.read_text().splitlines()
    assert len(rows) == 41 and rows[1].startswith(str(images / "000.png"))
    assert not (tmp_path / "preds.csv.partial").exists()
