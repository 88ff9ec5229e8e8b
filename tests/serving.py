"""Start a real `edgecls serve` process on a free loopback port, for the serve tests and the load benchmark."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, Sequence


def require(module: str, why: str):
    """Import an optional test dependency: skip without it locally, fail in CI (env CI set), where it must exist."""
    import importlib

    import pytest

    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run this test but {module} is missing: {why}")
        pytest.skip(f"{module} is missing: {why}", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """`python -m edgecls serve ...` (or `command`, a server taking `--port PORT`) with its log in a file;
    `stop()` sends SIGTERM like a service manager."""

    def __init__(self, models: Sequence[str], options: Sequence[str], log_path: Path,
                 env: Optional[dict[str, str]] = None, command: Optional[Sequence[str]] = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        if command is None:
            command = [sys.executable, "-m", "edgecls", "serve", *models, "--host", "127.0.0.1"]
        cmd = [*command, "--port", str(self.port), *options]
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})

    def wait_ready(self, timeout: float = 60.0) -> "ServerProcess":
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/v2/health/ready", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server not ready after {timeout} s:\n{self.log()}")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def start_server(models: Sequence[str], options: Sequence[str], log_path: Path) -> ServerProcess:
    return ServerProcess(models, options, log_path).wait_ready()


def metric_samples(text: str, name: str, **labels: str) -> dict[str, float]:
    """Samples of one Prometheus metric family (e.g. 'edgecls_batch_size'), keyed by sample name + `le`."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != name:
            continue
        for sample in family.samples:
            if all(sample.labels.get(k) == v for k, v in labels.items()):
                key = sample.name + (f"[{sample.labels['le']}]" if "le" in sample.labels else "")
                out[key] = out.get(key, 0.0) + sample.value
    return out
