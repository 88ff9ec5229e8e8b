"""Decoding worker processes, started safely from a process that already runs threads.

A forked child inherits every lock as it was at the fork. One held at that moment by another thread
(onnxruntime's intra-op pool, a shard pool, a library's own workers) is never released in the child, which can
then wait on it forever. So workers never fork from the caller: on POSIX they fork from a forkserver, a clean
single-threaded process started once per process (Python 3.14's default start method); elsewhere they are
spawned.

Like spawned ones, such workers import the caller's main module again. A script whose work is not under
`if __name__ == "__main__":` would run again in every worker, so for it `processes_are_safe` says no and
decoding uses threads.
"""

from __future__ import annotations

import ast
import multiprocessing
import signal
import sys
import threading
from concurrent.futures import Executor, ProcessPoolExecutor
from functools import lru_cache
from typing import Callable, Optional

# With one of these loaded, the main module most likely imports it, and every worker would import it again
# (seconds each); Ray's worker processes must never be imported twice. Decoding then uses threads.
HEAVY_LIBRARIES = ("tensorflow", "torch", "jax", "ray")
# Imported once in the forkserver, so that each worker forks with the decoding code already loaded.
_PRELOAD = ["edgecls.runtime.decoding"]


def start_method() -> str:
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def processes_are_safe() -> bool:
    """Whether worker processes can start here without running the caller's code again or importing a
    heavy library again."""
    if any(name in sys.modules for name in HEAVY_LIBRARIES):
        return False
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name.rpartition(".")[2] == "__main__":
        return True  # `python -m package`: workers skip a package's __main__
    path = getattr(main, "__file__", None)
    return path is None or guards_its_work(str(path))  # no file: an interactive session or a notebook


@lru_cache(maxsize=16)
def guards_its_work(path: str) -> bool:
    """True when the script's top level has an `if __name__ == "__main__":` block: the convention under
    which importing it again starts nothing (console-script wrappers have one)."""
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError, ValueError):
        return False
    return any(isinstance(node, ast.If) and _is_main_test(node.test) for node in tree.body)


def _is_main_test(test: ast.expr) -> bool:
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = (test.left, test.comparators[0])
    return any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides) and \
        any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides)


def processes_wanted(workers: int) -> bool:
    """Whether `workers` decoding workers for file paths are processes (else threads)."""
    return workers > 1 and processes_are_safe()


def start_early(workers: int) -> None:
    """Start the forkserver now if `workers` decoding workers will be processes, so that its imports overlap
    whatever the caller does next (loading a model); the first pool then starts in milliseconds."""
    if processes_wanted(workers) and start_method() == "forkserver":
        _ensure_forkserver()


def _ensure_forkserver() -> None:
    from multiprocessing import forkserver

    forkserver.set_forkserver_preload(_PRELOAD)  # read when the server starts: once per process
    if threading.current_thread() is not threading.main_thread():
        forkserver.ensure_running()
        return
    # The server and multiprocessing's resource tracker share the terminal's process group. Started with
    # Ctrl-C ignored (an ignored signal stays ignored across exec), an interrupt stops the caller's run and
    # never one of them halfway through its imports, with a traceback.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, previous)


def process_pool(workers: int, initializer: Optional[Callable[[], None]] = None) -> Executor:
    method = start_method()
    if method == "forkserver":
        _ensure_forkserver()  # returns at once when start_early already started it
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method),
                               initializer=initializer)
