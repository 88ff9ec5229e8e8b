"""edgecls as users get it: the wheel built from this checkout, installed into a fresh virtual environment and
used from a folder outside the checkout: with the runtime extras only (cpu, serve), and in another venv with
train as well."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
import venv
import zipfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow, pytest.mark.installed]
PIP_TIMEOUT = 1200


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """The sdist and the wheel, built as a release would build them (the wheel from the sdist)."""
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO)], capture_output=True,
                          text=True, timeout=PIP_TIMEOUT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def _fresh_env(dist: Path, tmp_path_factory, extras: str) -> dict:
    """A fresh venv with the wheel and `extras`, and a user's empty project folder outside the checkout."""
    root = tmp_path_factory.mktemp("user")
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    wheel = next(dist.glob("edgecls-*.whl"))
    _pip(python, "install", f"{wheel}[{extras}]")
    project = root / "project"
    project.mkdir()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("EDGECLS_", "PYTHON", "VIRTUAL_ENV"))}
    environ.update(EDGECLS_CACHE_DIR=str(root / "cache"), HOME=str(root), PATH=f"{python.parent}:{environ['PATH']}")
    return {"python": python, "edgecls": python.parent / "edgecls", "cwd": project, "env": environ}


@pytest.fixture(scope="module")
def env(dist, tmp_path_factory) -> dict:
    """The runtime extras only (cpu, serve): what an app that embeds edgecls installs."""
    return _fresh_env(dist, tmp_path_factory, "cpu,serve")


@pytest.fixture(scope="module")
def train_env(dist, tmp_path_factory) -> dict:
    """With the train extra as well, in a venv of its own: the runtime-only one must stay runtime-only whatever
    order the tests run in."""
    return _fresh_env(dist, tmp_path_factory, "cpu,serve,train")


def _pip(python: Path, *args: str) -> None:
    proc = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args[1:]]
                          if args[0] == "install" else [str(python), "-m", "pip", *args], capture_output=True,
                          text=True, timeout=PIP_TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _run(env: dict, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(env["edgecls"]), *args], cwd=env["cwd"], env=env["env"], capture_output=True,
                          text=True, timeout=timeout)


def test_the_wheel_carries_the_zoo_and_the_sdist_its_source(dist):
    wheel = next(dist.glob("edgecls-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for model in ("mnist", "fashion", "cifar10", "emotion"):
        assert {f"edgecls/artifacts/{model}/{model}.onnx", f"edgecls/artifacts/{model}/metrics.json",
                f"edgecls/artifacts/{model}/{model}.int8.onnx", f"edgecls/artifacts/{model}/model.keras"} <= names
    assert not any(n.endswith(("report.html", ".png")) or "/.train/" in n for n in names)
    sdist = next(dist.glob("edgecls-*.tar.gz"))
    with tarfile.open(sdist) as tar:
        members = tar.getnames()
    assert any(m.endswith("artifacts/mnist/mnist.int8.onnx") for m in members)
    assert any(m.endswith("runtime/store.py") for m in members)


def test_installed_runtime_works_from_any_folder(env):
    from PIL import Image

    from edgecls.data import load_dataset

    proc = _run(env, "models", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["mnist"]["test_accuracy"] > 0.99 and rows["cifar10"]["params"] > 1_000_000

    mnist = load_dataset("mnist")
    digits = env["cwd"] / "digits"
    digits.mkdir()
    for i in range(40):
        Image.fromarray(mnist.test.x[i, ..., 0]).save(digits / f"{i:02d}.png")
    proc = _run(env, "infer", "digits", "--json")
    assert proc.returncode == 0, proc.stderr
    labels = [int(r["label"]) for r in sorted(json.loads(proc.stdout), key=lambda r: r["path"])]
    assert np.mean(np.array(labels) == mnist.test.y[:40]) >= 0.95

    code = ("import sys; from edgecls.runtime import Classifier; c = Classifier('mnist'); "
            "print(c.predict(sys.argv[1])[0].label, c.path.parent.name, "
            "any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules))")
    proc = subprocess.run([str(env["python"]), "-c", code, str(digits / "00.png")], cwd=env["cwd"], env=env["env"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(mnist.test.y[0]), "mnist", "False"]


def test_installed_server_answers(env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([str(env["edgecls"]), "serve", "mnist", "--port", str(port), "--no-access-log"],
                              cwd=env["cwd"], env=env["env"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(base + "/v2/health/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail("server never became ready")
        from edgecls.data import load_dataset
        from edgecls.serve.protocol import INPUT_NAME

        digit = load_dataset("mnist").test
        body = json.dumps({"inputs": [{"name": INPUT_NAME, "shape": [1, 28, 28, 1], "datatype": "UINT8",
                                       "data": digit.x[0].ravel().tolist()}]}).encode()
        request = urllib.request.Request(base + "/v2/models/mnist/infer", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as r:
            answer = json.loads(r.read())
        labels = next(o for o in answer["outputs"] if o["name"] == "labels")
        assert answer["model_name"] == "mnist" and labels["data"][0] == str(digit.y[0])
    finally:
        server.terminate()
        server.wait(timeout=60)


@pytest.mark.parametrize("args", [("export", "mnist"), ("eval", "mnist"), ("train", "mnist"), ("bench", "mnist"), ("report", "mnist"),
                                  ("infer", "x", "--engine", "ray")])
def test_commands_that_need_another_extra_say_which(env, args):
    proc = _run(env, *args)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and " needs " in lines[0] and "pip install 'edgecls[" in lines[0], proc.stderr


def test_with_the_train_extra_a_shipped_model_exports_into_the_workspace(train_env):
    from edgecls import config

    proc = _run(train_env, "export", "mnist", "--int8", "--eval-limit", "500", "--data-dir", str(config.data_dir()),
                timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = train_env["cwd"] / "workspace" / "mnist"
    assert (written / "mnist.onnx").is_file() and (written / "mnist.int8.onnx").is_file()
