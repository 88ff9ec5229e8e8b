"""`edgecls tune`: measure once what the runtime tunes for a model on this machine, and show what it chose."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .root import (Fp16Option, Fp32Option, Int8Option, JsonOption, VariantOption, WorkspaceOption, app, console,
                   print_table, say, variant_from)


@app.command()
def tune(
    model: str = typer.Argument("mnist", help="Model name, model folder or .onnx file."),
    variant: str = VariantOption,
    int8: bool = Int8Option,
    fp16: bool = Fp16Option,
    fp32: bool = Fp32Option,
    device: str = typer.Option("auto", "--device", help="auto (CUDA if available) | cpu | cuda."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="onnxruntime threads (default: the cores "
                                          "this process may use)."),
    again: bool = typer.Option(False, "--again", help="Measure again even what is cached (after a hardware or "
                               "load change), replacing the cached figures."),
    as_json: bool = JsonOption,
    workspace: Optional[Path] = WorkspaceOption,
) -> None:
    """Measure the variant auto picks, batch-1 cores and sub-batch sizes for MODEL on this machine (once: later
    runs read the cache), and show each choice with where it came from and the figures behind it."""
    from ..api import tune as run_tune

    report = run_tune(model, variant=variant_from(variant, int8, fp16, fp32), device=device, threads=threads,
                      workspace=workspace, again=again)
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(f"{report.model} on this machine ({report.engine.provider})"), title_justify="left",
                  show_edge=False, pad_edge=False)
    for column in ("setting", "value", "source", "why"):
        table.add_column(column, overflow="fold")
    for row in report.rows():
        table.add_row(*(Text(row[c]) for c in ("setting", "value", "source", "why")))
    print_table(table)
    if report.choice.warning:
        say((report.choice.warning, "yellow"))
    say(f"cached in {report.cache_dir}", target=console)
