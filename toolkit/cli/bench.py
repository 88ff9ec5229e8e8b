"""`edgecls bench`: one table of format x device x batch size, with accuracy and agreement."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..formatting import percent
from . import exit_codes
from .root import DataDirOption, JsonOption, OptPath, WorkspaceOption, app, err_console, print_table, say


def _batch_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise typer.BadParameter("batch sizes must be positive")
    return sizes


@app.command()
def bench(
    target: str = typer.Argument(..., help="A model name (e.g. mnist), a .keras file, or an exported .onnx file."),
    device: str = typer.Option("auto", "--device", help="auto (CPU, plus CUDA when present) | cpu | cuda."),
    batch_sizes: str = typer.Option("1,32,256", "--batch-sizes", help="Comma-separated batch sizes."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Threads for every engine (default: the cores this process may use)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Score accuracy on a stratified sample of N test images."),
    repeats: int = typer.Option(5, "--repeats", min=1, help="Timed windows per measurement (median reported)."),
    peers: bool = typer.Option(True, "--peers/--no-peers", help="Also run edgecls against Keras, TFLite fp32/int8 and "
                               "Keras's own ONNX export in one process, taking turns (CPU), with ratios."),
    as_json: bool = JsonOption,
    data: OptPath = typer.Option(None, "--data", help="Score accuracy on this labelled folder (<class>/ sub-folders) "
                                 "instead of the model's own test split; needed for a bare .onnx file."),
    data_dir: OptPath = DataDirOption,
    workspace: OptPath = WorkspaceOption,
) -> None:
    """Benchmark Keras, TFLite fp32 and the ONNX variants: size, accuracy, agreement, speed, memory; then edgecls
    against its peers (TFLite int8, Keras->ONNX, ...) in one process, taking turns, with edgecls/best-peer ratios.
    Exit code 0: every row ran; 2: some rows could not run (each says why); 1: none could (nothing saved)."""
    from ..api import bench as run_bench
    from ..runtime.errors import EdgeclsError
    from ..runtime.store import locate
    from .extras import require

    if not locate(target, workspace).is_onnx:
        require("train")  # the Keras rows, before any data is read
    log = (lambda o: None) if as_json else (lambda o: say(
        (f"{o.row.label} on {o.row.device}: {'done' if o.error is None else 'could not run: ' + o.error}", "dim"),
        target=err_console))
    result = run_bench(target, device=device, batch_sizes=_batch_sizes(batch_sizes), threads=threads, limit=limit,
                       repeats=repeats, peers=peers, data=data, data_dir=data_dir, workspace=workspace, on_row=log,
                       on_stage=(lambda s: None) if as_json else (lambda s: say((s, "dim"), target=err_console)))
    report, failed, total = result.report, result.failed, result.total
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    if result.saved is None:
        raise EdgeclsError(f"{report['name']}: none of the {total} benchmark rows could run; nothing saved")
    if not as_json:
        if report["int8_note"]:
            say((report["int8_note"], "yellow"))
        say(f"saved {result.saved} and .json")
    if failed:
        say((f"{failed} of {total} rows could not run", "yellow"), target=err_console)
        raise typer.Exit(exit_codes.INPUTS_SKIPPED)


def _print(report: dict) -> None:
    """Compact enough for an 80-column pipe: one device goes in the title, units in the headers."""
    from rich.table import Table
    from rich.text import Text

    bs = report["batch_sizes"]
    devices = sorted({r["device"] for r in report["rows"]})
    many = len(devices) > 1
    title = (f"{report['name']}: {report['samples']} test images, {report['threads']} threads"
             + ("" if many else f", {devices[0]}") + f"; img/s at batch {', '.join(map(str, bs))}")
    table = Table(title=Text(title), title_justify="left", show_edge=False, pad_edge=False)
    cols = ["format"] + (["device"] if many else []) + ["KiB", "acc", "agree"] + [f"@{b}" for b in bs] + \
        ["p50/p99 ms", "RSS MB"]
    for col in cols:
        table.add_column(col, justify="left" if col in ("format", "device") else "right")
    for r in report["rows"]:
        head = [r["label"]] + ([r["device"]] if many else [])
        if r.get("error"):
            table.add_row(*head, Text(f"could not run: {r['error']}", style="yellow"))
            continue
        table.add_row(*head, f"{r['size_bytes'] / 1024:,.0f}", percent(r.get("accuracy")),
                      percent(r.get("agreement")), *[f"{r['throughput'][str(b)]:,.0f}" for b in bs],
                      f"{r['latency_p50_ms']:.3f}/{r['latency_p99_ms']:.3f}", f"{r['peak_rss_mb']:.0f}")
    print_table(table)
    h2h = report.get("head_to_head")
    if h2h:
        _print_head_to_head(h2h, report.get("head_to_head_summary", []))


def _print_head_to_head(h2h: dict, summary: list) -> None:
    from rich.table import Table
    from rich.text import Text

    if h2h.get("error"):
        say((f"edgecls vs peers could not run: {h2h['error']}", "yellow"), target=err_console)
        return
    table = Table(title=Text(f"edgecls vs peers: one process, taking turns, batch {h2h['batch']}, {h2h['threads']} threads"),
                  title_justify="left", show_edge=False, pad_edge=False)
    for col in ("engine", "size", "acc", "agree", "img/s", "p50 ms @1", "p99 ms @1"):
        table.add_column(col, justify="left" if col == "engine" else "right")
    for r in h2h["rows"]:
        if r.get("error"):
            table.add_row(r["label"], Text(f"could not run: {r['error']}", style="yellow"))
            continue
        table.add_row(r["label"], f"{r['size_bytes'] / 1024:,.0f} KiB", percent(r.get("accuracy")),
                      percent(r.get("agreement")), f"{r['throughput']:,.0f}", f"{r['latency_p50_ms']:.3f}",
                      f"{r['latency_p99_ms']:.3f}")
    print_table(table)
    for line in summary:
        say((line, "yellow" if line.startswith("int8 is not faster") else ""))


@app.command()
def report(
    name: str = typer.Argument(..., help="A trained model (e.g. emotion, or your own)."),
    data: OptPath = typer.Option(None, "--data", help="Score on this labelled folder instead of the model's own "
                                 "held-out test split."),
    data_dir: OptPath = DataDirOption,
    workspace: OptPath = WorkspaceOption,
) -> None:
    """Write <workspace>/NAME/report.html (self-contained) and its PNG figures."""
    from ..report.build import build_report
    from .extras import require

    require("train")
    path = build_report(name, workspace, data_dir, Path(data) if data else None)
    say(("wrote ", "green"), f"{path} (figures in {path.parent / 'figures'})")
