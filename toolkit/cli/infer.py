"""`edgecls infer`: classify files, folders or globs with an exported model."""

from __future__ import annotations

import os
import sys
import time
import warnings
from contextlib import closing
from pathlib import Path
from typing import Optional

import typer

from .root import WorkspaceOption, app, console, err_console, print_table
from .interrupt import stop_on_interrupt

MAX_TABLE_ROWS = 200


@app.command()
def infer(
    inputs: list[str] = typer.Argument(..., help="Image files, folders or glob patterns (--engine ray: also "
                                       ".txt listings of paths and URIs such as s3://bucket/photos/)."),
    model: str = typer.Option("mnist", "--model", "-m", help="Shipped model name or path to an .onnx file."),
    int8: bool = typer.Option(False, "--int8", help="Use the model's int8 variant (default for a model name: the "
                              "fastest validated variant on this machine, measured once and cached)."),
    fp32: bool = typer.Option(False, "--fp32", help="Use the model's fp32 variant."),
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
    force: bool = typer.Option(False, "--force", help="Replace an existing --output file that is not an edgecls "
                               "predictions file (inputs and the model are never overwritten)."),
    workspace: Optional[Path] = WorkspaceOption,
    engine: str = typer.Option("local", "--engine", help="local (this machine) | ray (a Ray cluster, Ray Data)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Ray head host:port, ray://host:port or "
                                              "auto (default: $RAY_ADDRESS, else a local Ray instance)."),
    actors: Optional[int] = typer.Option(None, "--actors", min=1, help="--engine ray: inference actors "
                                         "(default: autoscale to the cluster; each uses --threads CPUs, default 1)."),
) -> None:
    """Classify images. Unreadable or skipped inputs are listed. Exit codes: 0 all classified, 1 usage or model
    error, 2 some inputs unreadable or skipped, 130 interrupted."""
    from ..runtime.classifier import Classifier
    from ..runtime.errors import EdgeclsError
    from ..runtime.files import iter_image_files
    from ..runtime.outputs import PredictionFile, RunTally, Writer, check_output, choose_format
    from ..runtime.store import find_onnx, looks_like_path
    from ..runtime.stream import classify_stream

    if int8 + fp16 + fp32 > 1:
        raise EdgeclsError("choose one of --int8, --fp16 and --fp32")
    if engine not in ("local", "ray"):
        raise EdgeclsError(f"unknown engine {engine!r}; choose local or ray")
    if engine == "ray":
        from .infer_ray import infer_on_ray

        return infer_on_ray(inputs, model=model, variant="int8" if int8 else "fp16" if fp16 else "fp32",  # auto: fp32
                            device=device, batch_size=batch_size, threads=threads, recursive=recursive, top_k=top_k,
                            output=output, fmt="json" if as_json else fmt, force=force, address=ray_address,
                            actors=actors, workspace=workspace)
    if ray_address or actors:
        raise EdgeclsError("--ray-address and --actors need --engine ray")
    variant = "int8" if int8 else "fp16" if fp16 else "fp32" if fp32 else "auto"
    choice = None
    if variant == "auto" and not looks_like_path(model):
        from ..runtime.variant_choice import choose_variant

        choice = choose_variant(model, device, threads, workspace, spin=False)  # fastest validated variant here
        model_path = choice.path
    else:
        model_path = find_onnx(model, "fp32" if variant == "auto" else variant, workspace)
    if output is not None:  # before the model loads and before the first image is decoded
        check_output(output, inputs, recursive=recursive, force=force, protected=[model_path])
    fmt = choose_format(output, fmt, as_json)
    # Decoding workers share the cores between batches: idle onnxruntime threads must not spin.
    with warnings.catch_warnings():  # its int8 speed warning is printed below as one plain line
        warnings.simplefilter("ignore", RuntimeWarning)
        clf = Classifier(model_path, device=device, threads=threads, spin=False)
    speed = choice.int8_speedup if choice else None
    note = (choice.note if speed and min(speed.values()) < 1 else None) if choice else clf.speed_note
    if note:  # int8 is not faster than fp32 on this machine: say so
        err_console.print(note, highlight=False, markup=False, style="yellow")
    if top_k > len(clf.labels):
        err_console.print(f"--topk {top_k}: the model has {len(clf.labels)} labels; showing all {len(clf.labels)}",
                          highlight=False, markup=False)
        top_k = len(clf.labels)

    sink = PredictionFile(output, fmt, top_k) if output is not None else None
    stdout = _stdout_text() if sink is None and fmt != "table" else None
    writer = sink or (Writer(stdout, fmt, top_k) if stdout is not None else None)
    shown: list = []
    tally = RunTally()
    start = time.perf_counter()
    files = iter_image_files(inputs, recursive=recursive, on_skip=tally.skip)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(SpinnerColumn(), TextColumn("classifying"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=err_console,
                        disable=not err_console.is_terminal, transient=True)
    interrupted = False
    try:
        with progress, stop_on_interrupt() as stop, closing(
                classify_stream(clf, files, batch_size=batch_size, workers=workers, top_k=top_k)) as results:
            task = progress.add_task("infer", total=None, rate="")
            for result in results:
                if stop.requested:
                    break
                tally.add(result)
                if writer:
                    writer.write(result)
                elif len(shown) < MAX_TABLE_ROWS:
                    shown.append(result)
                done = tally.total
                if done % 512 == 0:
                    progress.update(task, completed=done, rate=f"{done / (time.perf_counter() - start):,.0f} img/s")
            interrupted = stop.requested
    except KeyboardInterrupt:  # a second Ctrl-C
        interrupted = True
    elapsed = time.perf_counter() - start
    where = None
    if sink is not None:
        if interrupted:
            where = sink.keep_partial()
        elif tally.total == 0:
            sink.discard()
        else:
            where = sink.commit()
    elif writer is not None:
        writer.close()
    if fmt == "table":
        _print_table(shown, top_k, tally.total)
    for line in tally.problem_lines():
        err_console.print(line, highlight=False, markup=False, style="red")
    rate = tally.ok / elapsed if elapsed > 0 else 0.0
    skipped = f", {tally.skipped} skipped" if tally.skipped else ""
    unsure = f" ({tally.unsure} unsure)" if tally.unsure else ""
    err_console.print(
        f"{tally.total} images: {tally.ok} classified{unsure}, {tally.failed} failed{skipped} in {elapsed:.2f}s "
        f"({rate:,.0f} img/s) with {clf.path.name} ({clf.info.variant}) on {clf.provider}", highlight=False, markup=False)
    if where is not None:
        err_console.print(f"predictions: {where}", highlight=False, markup=False)
    if interrupted:
        err_console.print("interrupted: results so far are kept", style="yellow", markup=False)
        raise typer.Exit(tally.exit_code(interrupted=True))
    if tally.total == 0 and not tally.skipped:
        raise EdgeclsError(f"no images found in {' '.join(inputs)}" + ("" if recursive else " (try --recursive)"))
    raise typer.Exit(tally.exit_code())


def _stdout_text():
    """stdout for machine formats: file names that are not UTF-8 go out byte for byte (as in output files)
    instead of crashing the encoder."""
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="surrogateescape")
    return sys.stdout


def _print_table(rows: list, top_k: int, total: int) -> None:
    from rich.table import Table
    from rich.text import Text

    from ..runtime.outputs import printable

    table = Table(show_edge=False, pad_edge=False)
    table.add_column("file", overflow="fold")
    table.add_column("label")
    table.add_column("score", justify="right")
    table.add_column("unsure")
    if top_k > 1:
        table.add_column(f"top {top_k}", overflow="fold")
    for r in rows:  # every cell is Text: file names and labels are shown literally, never as markup
        if r.prediction is None:
            cells = [Text(printable(r.source)), Text("error", style="red"), Text(printable(r.error or "")), Text("")]
        else:
            p = r.prediction
            cells = [Text(printable(r.source)), Text(printable(p.label)), Text(f"{p.score:.3f}"),
                     Text("unsure" if p.unsure else "", style="yellow")]
        if top_k > 1:
            cells.append(Text("" if r.prediction is None else
                              ", ".join(f"{printable(lbl)} {s:.2f}" for lbl, s in r.prediction.top_k)))
        table.add_row(*cells)
    print_table(table)
    if total > len(rows):
        console.print(f"... {total - len(rows)} more rows; write them all with --output preds.csv", style="dim",
                      highlight=False, markup=False)
