"""Shared fixtures. Data comes from $EDGECLS_DATA (CI: ../shared/datasets); never copied into the repo."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from edgecls.runtime import environment

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The suite gets its own empty workspace: a user's models in ./workspace or $EDGECLS_WORKSPACE never change what
# tests see, and nothing a test runs writes there (reads fall back to the shipped zoo).
_WORKSPACE = tempfile.mkdtemp(prefix="edgecls-test-workspace-")
os.environ["EDGECLS_WORKSPACE"] = _WORKSPACE
os.environ.pop("EDGECLS_ARTIFACTS", None)
atexit.register(shutil.rmtree, _WORKSPACE, True)
# ...and its own cache with no per-machine measurements (variant auto, sub-batch sizes): nothing from the user's
# earlier runs decides what a test measures, and nothing is left in ~/.cache. Decoded data sets and the web
# runtime are shared with the user's cache (read-mostly, and slow to rebuild).
_USER_CACHE = environment.cache_dir()
_CACHE = tempfile.mkdtemp(prefix="edgecls-test-cache-")
for _kind in ("datasets", "onnxruntime-web"):
    (_USER_CACHE / _kind).mkdir(parents=True, exist_ok=True)
    os.symlink(_USER_CACHE / _kind, Path(_CACHE) / _kind)
os.environ["EDGECLS_CACHE_DIR"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, True)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = environment.absolute(os.environ.get("EDGECLS_DATA") or REPO.parent / "shared" / "datasets")
    if not (path / "mnist.npz").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the reference data sets; none at {path} (set EDGECLS_DATA)")
        pytest.skip(f"reference data sets not found at {path}; set EDGECLS_DATA")
    return path


@pytest.fixture(scope="session")
def mnist(data_dir):
    from edgecls.data import load_dataset

    return load_dataset("mnist", data_dir)


@pytest.fixture(scope="session")
def artifacts_root() -> Path:
    return REPO / "artifacts"
