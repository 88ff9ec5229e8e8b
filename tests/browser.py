"""Headless Chromium (Debian's package, driven by Playwright) and a loopback static file server, for the
web bundle test and benchmark."""

from __future__ import annotations

import functools
import os
import shutil
import threading
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class _Handler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                      ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json"}
    isolated = False

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        if self.isolated:  # cross-origin isolation: lets onnxruntime-web use WASM threads
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass


@contextmanager
def static_server(root: Path, isolated: bool = False) -> Iterator[str]:
    """Serve `root` on 127.0.0.1 (a free port) from a thread; yields the base URL."""
    handler = type("Handler", (_Handler,), {"isolated": isolated})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def chromium(profile: Path, executable: str) -> Iterator[object]:
    """A fresh headless Chromium context (its own user-data-dir)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=executable, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 900, "height": 900})
        try:
            yield context
        finally:
            context.close()


def ci() -> bool:
    return bool(os.environ.get("CI"))
