"""`edgecls infer`: classify files, folders or globs with an exported model."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from .app import ArtifactsOption, app, console, err_console

MAX_TABLE_ROWS = 200
MAX_FAILURES_SHOWN = 50


@app.command()
def infer(
    inputs: list[str] = typer.Argument(..., help="Image files, folders or glob patterns (--engine ray: also "
                                       ".txt listings of paths and URIs such as s3://bucket/photos/)."),
    model: str = typer.Option("mnist", "--model", "-m", help="Shipped model name or path to an .onnx file."),
    int8: bool = typer.Option(False, "--int8", help="Use the model's int8 variant."),
    fp16: bool = typer.Option(False, "--fp16", help="Use the model's fp16 variant."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA if available) | cpu | cuda."),
    batch_size: int = typer.Option(256, "--batch-size", "-b", min=1, help="Images per inference batch."),
    threads: Optional[int] = typer.Option(None, "--threads", help="onnxruntime intra-op threads (default: all cores)."),
    workers: int = typer.Option(os.cpu_count() or 1, "--workers", min=1, help="Decoding worker processes."),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Descend into sub-folders."),
    top_k: int = typer.Option(1, "--topk", "-k", min=1, help="Report the k most likely labels."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write predictions to .csv, .json or .jsonl "
                                          "(--engine ray: a folder of Parquet parts, .parquet or .csv)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="table | csv | json | jsonl (default: from --output, else table)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON to stdout (same as --format json)."),
    artifacts: Optional[Path] = ArtifactsOption,
    engine: str = typer.Option("local", "--engine", help="local (this machine) | ray (a Ray cluster, Ray Data)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Ray head host:port, ray://host:port or "
                                              "auto (default: $RAY_ADDRESS, else a local Ray instance)."),
    actors: Optional[int] = typer.Option(None, "--actors", min=1, help="--engine ray: inference actors "
                                         "(default: autoscale to the cluster; each uses --threads CPUs, default 1)."),
) -> None:
    """Classify images. Bad files are reported and skipped; the exit code is 1 if any failed."""
    from ..runtime.classifier import Classifier
    from ..runtime.errors import EdgeclsError
    from ..runtime.files import iter_image_files
    from ..runtime.stream import classify_stream
    from .outputs import FORMATS, Writer

    if int8 and fp16:
        raise EdgeclsError("choose one of --int8 and --fp16")
    if engine not in ("local", "ray"):
        raise EdgeclsError(f"unknown engine {engine!r}; choose local or ray")
    if engine == "ray":
        from .infer_ray import infer_on_ray

        return infer_on_ray(inputs, model=model, variant="int8" if int8 else "fp16" if fp16 else "fp32",
                            device=device, batch_size=batch_size, threads=threads, recursive=recursive, top_k=top_k,
                            output=output, fmt="json" if as_json else fmt, address=ray_address, actors=actors,
                            artifacts=artifacts)
    if ray_address or actors:
        raise EdgeclsError("--ray-address and --actors need --engine ray")
    fmt = "json" if as_json else fmt or (output.suffix.lstrip(".").lower() if output else "table")
    if fmt not in FORMATS or (output is not None and fmt == "table"):
        raise EdgeclsError(f"unknown output format {fmt!r}; use .csv, .json or .jsonl (or --format)")
    variant = "int8" if int8 else "fp16" if fp16 else "fp32"
    # Decoding workers share the cores between batches: idle onnxruntime threads must not spin.
    clf = Classifier(model, variant=variant, device=device, threads=threads, artifacts=artifacts, spin=False)

    partial = None
    if output is not None:
        partial = output.with_name(output.name + ".partial")
        sink = partial.open("w", newline="", encoding="utf-8")
    else:
        sink = sys.stdout
    writer = Writer(sink, fmt, top_k) if fmt != "table" else None
    shown: list = []
    counts = {"ok": 0, "failed": 0}
    failures: list = []
    start = time.perf_counter()
    files = iter_image_files(inputs, recursive=recursive)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(SpinnerColumn(), TextColumn("classifying"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=err_console,
                        disable=not err_console.is_terminal, transient=True)
    interrupted = False
    try:
        with progress:
            task = progress.add_task("infer", total=None, rate="")
            for result in classify_stream(clf, files, batch_size=batch_size, workers=workers, top_k=top_k):
                counts["ok" if result.ok else "failed"] += 1
                if not result.ok and len(failures) < MAX_FAILURES_SHOWN:  # memory stays bounded
                    failures.append(result)
                if writer:
                    writer.write(result)
                elif len(shown) < MAX_TABLE_ROWS:
                    shown.append(result)
                done = counts["ok"] + counts["failed"]
                if done % 512 == 0:
                    progress.update(task, completed=done, rate=f"{done / (time.perf_counter() - start):,.0f} img/s")
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if writer:
            writer.close()
        if partial is not None:
            sink.close()
    elapsed = time.perf_counter() - start
    total = counts["ok"] + counts["failed"]
    if partial is not None and not interrupted:
        os.replace(partial, output)
    if fmt == "table":
        _print_table(shown, top_k, total)
    for r in failures:
        err_console.print(f"failed {r.source}: {r.error}", highlight=False, markup=False, style="red")
    if counts["failed"] > len(failures):
        more = f"... and {counts['failed'] - len(failures)} more failures"
        err_console.print(more + (" (all listed in the output file)" if writer else ""), style="red")
    rate = counts["ok"] / elapsed if elapsed > 0 else 0.0
    err_console.print(
        f"{total} images: {counts['ok']} classified, {counts['failed']} failed in {elapsed:.2f}s "
        f"({rate:,.0f} img/s) with {clf.path.name} ({clf.info.variant}) on {clf.provider}", highlight=False, markup=False)
    if output is not None:
        where = partial if interrupted else output
        err_console.print(f"predictions: {where}", highlight=False)
    if interrupted:
        err_console.print("[yellow]interrupted: results so far are kept[/]")
        raise typer.Exit(130)
    if total == 0:
        raise EdgeclsError(f"no images found in {' '.join(inputs)}" + ("" if recursive else " (try --recursive)"))
    if counts["failed"]:
        raise typer.Exit(1)


def _print_table(rows: list, top_k: int, total: int) -> None:
    from rich.table import Table

    table = Table(show_edge=False, pad_edge=False)
    table.add_column("file")
    table.add_column("label")
    table.add_column("score", justify="right")
    table.add_column("unsure")
    if top_k > 1:
        table.add_column(f"top {top_k}")
    from rich.markup import escape

    for r in rows:
        if r.prediction is None:
            cells = [escape(r.source), "[red]error[/]", escape(r.error or ""), ""]
        else:
            p = r.prediction
            cells = [escape(r.source), escape(p.label), f"{p.score:.3f}", "[yellow]unsure[/]" if p.unsure else ""]
        if top_k > 1:
            cells.append("" if r.prediction is None else
                         escape(", ".join(f"{lbl} {s:.2f}" for lbl, s in r.prediction.top_k)))
        table.add_row(*cells)
    console.print(table)
    if total > len(rows):
        console.print(f"[dim]... {total - len(rows)} more rows; write them all with --output preds.csv[/]")
