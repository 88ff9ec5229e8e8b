"""Shared fixtures. Data comes from $EDGECLS_DATA (CI: ../shared/datasets); never copied into the repo."""

from __future__ import annotations

import atexit
import importlib.abc
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from edgecls.runtime import environment

REPO = Path(__file__).resolve().parent.parent
# The fast tier (`pytest --fast`, about two minutes on two cores): these modules need no TensorFlow; their tests marked
# slow stay out. Everything runs in the full tier (plain `pytest`), as CI does.
FAST_TIER = (
    "unit/", "test_batch1_binding.py", "test_bench_report.py", "test_channels_last_tail.py", "test_cli.py",
    "test_data.py", "test_data_splits.py", "test_decode_workers.py", "test_generated_tables.py", "test_hostile.py",
    "test_infer_output_failures.py", "test_input_forms.py", "test_int8_stem.py", "test_preprocess.py",
    "test_realworld.py", "test_runtime.py", "test_sharded_batches.py", "test_shipped_models.py",
    "test_sub_batches.py", "test_transforms.py", "test_variant_choice.py", "test_workspace.py",
)
TENSORFLOW = ("tensorflow", "keras", "tf2onnx")
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


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fast", action="store_true",
                     help="the fast tier: the FAST_TIER modules of tests/conftest.py without their slow tests, with "
                          "TensorFlow unimportable")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("fast"):
        given = config.option.markexpr
        config.option.markexpr = "not slow" + (f" and ({given})" if given else "")
        sys.meta_path.insert(0, _NoTensorFlow())


def pytest_ignore_collect(collection_path: Path, config: pytest.Config):  # noqa: ANN201 - True or None (no opinion)
    if config.getoption("fast") and collection_path.name.startswith("test_") and collection_path.suffix == ".py":
        tests = Path(__file__).parent
        where = collection_path.relative_to(tests).as_posix() if collection_path.is_relative_to(tests) else ""
        if not any(where == entry or (entry.endswith("/") and where.startswith(entry)) for entry in FAST_TIER):
            return True
    return None


class _NoTensorFlow(importlib.abc.MetaPathFinder):
    """In the fast tier an import of TensorFlow fails at once, naming the rule, instead of costing seconds."""

    def find_spec(self, name, path=None, target=None):  # noqa: ANN001, ANN201 - the finder protocol
        if name.split(".")[0] in TENSORFLOW:
            raise ModuleNotFoundError(f"{name}: the fast tier runs without TensorFlow; take this test's module out "
                                      "of FAST_TIER in tests/conftest.py, or mark the test slow")
        return None
