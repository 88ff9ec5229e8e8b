"""Decoding worker processes (runtime/workers.py): they never fork from the caller, whose other threads may
hold locks at that moment, and they are used only where starting them cannot run the caller's script again."""

from __future__ import annotations

import os
import sys
import threading
import types
from concurrent.futures import TimeoutError as FutureTimeout

import pytest

from edgecls.runtime import workers

# Held by the test below while the pool starts, as onnxruntime's or any library's thread may hold its own
# locks at that moment. A worker forked from this process would find it held, forever.
_HELD = threading.Lock()


def _take_the_held_lock() -> int:
    with _HELD:
        return os.getpid()


def test_a_lock_held_in_the_caller_does_not_reach_the_workers():
    _HELD.acquire()
    pool = workers.process_pool(2)
    try:
        pids = {pool.submit(_take_the_held_lock).result(timeout=60) for _ in range(4)}
        assert os.getpid() not in pids
    except FutureTimeout:
        pytest.fail("a decoding worker waited on a lock its parent held when it was started")
    finally:
        _HELD.release()
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)


def _script(tmp_path, text: str) -> str:
    path = tmp_path / "script.py"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text, guarded", [
    ('def main():\n    pass\n\nif __name__ == "__main__":\n    main()\n', True),
    ("if '__main__' == __name__:\n    print(1)\n", True),
    ("import edgecls\nprint('work at import time')\n", False),
    ('def main():\n    if __name__ == "__main__":\n        pass\n', False),  # not at the top level
    ('if __name__ != "__main__":\n    pass\n', False),
    ("if __name__ == (\n", False),  # not Python
])
def test_scripts_that_guard_their_work(tmp_path, text, guarded):
    assert workers.guards_its_work(_script(tmp_path, text)) is guarded


def test_a_missing_script_counts_as_unguarded(tmp_path):
    assert workers.guards_its_work(str(tmp_path / "gone.py")) is False


def _main_module(monkeypatch, file=None, spec_name=None):
    main = types.ModuleType("__main__")
    main.__spec__ = types.SimpleNamespace(name=spec_name) if spec_name else None
    if file is not None:
        main.__file__ = file
    monkeypatch.setitem(sys.modules, "__main__", main)
    for name in workers.HEAVY_LIBRARIES:
        monkeypatch.delitem(sys.modules, name, raising=False)


def test_processes_follow_the_main_module(monkeypatch, tmp_path):
    guarded = _script(tmp_path, 'if __name__ == "__main__":\n    pass\n')
    (tmp_path / "loose.py").write_text("print('runs again in every worker')\n")
    cases = [
        (dict(), True),  # an interactive session or a notebook: nothing is imported again
        (dict(spec_name="edgecls.__main__"), True),  # python -m edgecls
        (dict(file=guarded), True),
        (dict(file=str(tmp_path / "loose.py")), False),
        (dict(file=str(tmp_path / "loose.py"), spec_name="pkg.loose"), False),  # python -m pkg.loose
    ]
    for main, safe in cases:
        _main_module(monkeypatch, **main)
        assert workers.processes_are_safe() is safe, main


@pytest.mark.parametrize("library", workers.HEAVY_LIBRARIES)
def test_a_heavy_library_in_the_caller_means_threads(monkeypatch, library):
    _main_module(monkeypatch)
    assert workers.processes_are_safe()
    monkeypatch.setitem(sys.modules, library, types.ModuleType(library))
    assert not workers.processes_are_safe()
