"""The `edgecls` command. Each command imports heavy libraries (TensorFlow, onnxruntime) only
when it runs, so `edgecls --help` stays instant."""

from __future__ import annotations

import os
import sys

import typer

from ..runtime.errors import EdgeclsError
from . import bench, evaluate, export, infer, models, train
from .app import app, console

__all__ = ["app", "main"]

_ = (bench, evaluate, export, infer, models, train)  # command modules register themselves on `app`


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's C++ start-up chatter off the terminal
    try:
        app()
    except EdgeclsError as exc:
        from rich.markup import escape

        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)  # "[ray]", paths with [...]
        sys.exit(1)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        sys.exit(130)

