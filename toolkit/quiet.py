"""Keep TensorFlow's start-up banner and retracing chatter off the terminal, in one place.

TensorFlow 2.21 prints its banner (oneDNN, CUDA drivers, CPU features) through absl's C++ logging before
absl is initialised, which ignores TF_CPP_MIN_LOG_LEVEL; it does so twice (two shared libraries). So the
first `import tensorflow` runs with file descriptor 2 pointed at /dev/null, and afterwards the Python
loggers (tensorflow, absl) only pass errors. Python exceptions from the import are unaffected (they are
raised after stderr is back). `--verbose` skips all of this, and shows what the exporters keep from the
quantization tools (their progress and warnings, on the `edgecls.exporters` logger: exporters/chatter.py).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import sys
from typing import Iterator, Optional

LOUD = ("tensorflow",)
CHATTY = "edgecls.exporters"  # libraries' chatter kept at DEBUG level: shown with --verbose


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the real loader of a loud module so its module code runs silenced."""

    def find_spec(self, name: str, path: Optional[object] = None, target: Optional[object] = None):
        if name not in LOUD:
            return None
        sys.meta_path.remove(self)  # once: let the real finders answer
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        real_exec = spec.loader.exec_module

        def exec_module(module) -> None:  # noqa: ANN001 - importlib protocol
            with _stderr_silenced():
                real_exec(module)
            _quiet_loggers()

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _quiet_loggers() -> None:
    for name in ("tensorflow", "absl", "h5py", "tf2onnx"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _show(name: str) -> None:
    logger = logging.getLogger(name)
    if not logger.handlers:
        handler = logging.StreamHandler()  # stderr
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


def quiet_tensorflow(verbose: bool = False) -> None:
    """Call before anything imports TensorFlow (the CLI does, once). `verbose`: leave TensorFlow's logs on."""
    if verbose:
        _show(CHATTY)
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = os.environ.get("EDGECLS_TF_LOG_LEVEL", "0")
        for hook in [h for h in sys.meta_path if isinstance(h, _QuietImport)]:
            sys.meta_path.remove(hook)
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # C++ logs after start-up
    _quiet_loggers()
    if "tensorflow" not in sys.modules and not any(isinstance(h, _QuietImport) for h in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())
