"""Atomic writes: a write that fails at any point leaves the previous file intact, byte for byte."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from edgecls.runtime import atomic
from edgecls.runtime.atomic import write_bytes_atomic, write_json_atomic

PREVIOUS = b"previous artifact \x00\xff"


def test_writes_new_content_readable_by_all(tmp_path):
    target = tmp_path / "deep" / "er" / "model.onnx"  # parent folders are created
    write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # not mkstemp's 0600: shipped files are readable
    write_bytes_atomic(str(target), b"newer")  # a str path works too, and replaces
    assert target.read_bytes() == b"newer"
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.onnx"]


def test_json_is_indented_with_a_final_newline(tmp_path):
    target = tmp_path / "metrics.json"
    write_json_atomic(target, {"b": [1, 2], "a": "x"})
    text = target.read_text()
    assert text == json.dumps({"b": [1, 2], "a": "x"}, indent=2) + "\n"
    assert json.loads(text) == {"b": [1, 2], "a": "x"}


def test_unserialisable_json_leaves_previous_file(tmp_path):
    target = tmp_path / "history.json"
    target.write_bytes(PREVIOUS)
    with pytest.raises(TypeError):
        write_json_atomic(target, {"bad": object()})
    assert target.read_bytes() == PREVIOUS


@pytest.mark.parametrize("where", ["write", "fsync", "chmod", "replace"])
@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_failure_at_any_step_leaves_previous_file(tmp_path, monkeypatch, where, error):
    target = tmp_path / "model.onnx"
    target.write_bytes(PREVIOUS)
    seen = []

    def fail(*args, **kwargs):
        seen.append(where)
        raise error

    if where == "write":
        real_fdopen = os.fdopen

        class FailingFile:
            def __init__(self, fd, mode):
                self._fh = real_fdopen(fd, mode)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self._fh.close()

            def write(self, data):
                self._fh.write(data[: len(data) // 2])  # half of it reaches the disk, then the disk is full
                fail()

        monkeypatch.setattr(atomic.os, "fdopen", FailingFile)
    else:
        monkeypatch.setattr(atomic.os, where, fail)
    with pytest.raises(type(error)):
        write_bytes_atomic(target, b"x" * 100_000)
    monkeypatch.undo()
    assert seen == [where]
    assert target.read_bytes() == PREVIOUS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # the temp file is cleaned up too


def test_data_is_flushed_and_synced_before_the_rename(tmp_path, monkeypatch):
    """The rename must come after fsync of the complete data, or a crash could publish an empty file."""
    target = tmp_path / "report.json"
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.fstat(fd).st_size))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.path.getsize(src)))
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "replace", replace)
    write_bytes_atomic(target, b"y" * 5000)
    assert events == [("fsync", 5000), ("replace", 5000)]


def test_temp_file_lives_beside_the_target(tmp_path, monkeypatch):
    """Same folder, so the rename is atomic (no cross-device copy) and never clobbers a user file."""
    target = tmp_path / "out" / "m.onnx"
    calls = []
    real_replace = os.replace

    def replace(src, dst):
        calls.append((src, dst))
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    write_bytes_atomic(target, b"z")
    (src, dst), = calls
    assert os.path.dirname(src) == str(target.parent) and str(dst) == str(target)
    assert os.path.basename(src).startswith(".m.onnx.") and src.endswith(".tmp")


def test_killed_writer_leaves_previous_file(tmp_path):
    """SIGKILL a real writer process in the middle of a large write: the old file survives untouched."""
    target = tmp_path / "model.onnx"
    target.write_bytes(PREVIOUS)
    ready = tmp_path / "ready"
    code = textwrap.dedent(f"""
        import os, time
        from pathlib import Path
        from edgecls.runtime import atomic
        real_fsync = os.fsync
        def stall(fd):  # the data is written but not yet renamed: the worst moment to die
            Path({str(ready)!r} + ".part").write_text(str(os.fstat(fd).st_size))
            os.rename({str(ready)!r} + ".part", {str(ready)!r})
            time.sleep(60)
        atomic.os.fsync = stall
        atomic.write_bytes_atomic(Path({str(target)!r}), b"n" * 3_000_000)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert ready.exists(), "the writer never reached fsync"
        assert ready.read_text() == "3000000"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert target.read_bytes() == PREVIOUS


def test_interrupt_just_after_the_rename_is_not_masked(tmp_path, monkeypatch):
    """Ctrl-C landing right after the rename: the new file is complete and the interrupt propagates as is."""
    target = tmp_path / "metrics.json"
    target.write_bytes(PREVIOUS)
    real_replace = os.replace

    def replace_then_interrupt(src, dst):
        real_replace(src, dst)
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", replace_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_bytes_atomic(target, b"complete")
    assert target.read_bytes() == b"complete"
