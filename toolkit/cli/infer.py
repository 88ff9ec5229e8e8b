"""`edgecls infer`: classify files, folders or globs with an exported model (edgecls.api.infer / infer_ray)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

import typer

from . import exit_codes
from .interrupt import stop_on_interrupt
from .root import (Fp16Option, Fp32Option, Int8Option, VariantOption, WorkspaceOption, app, console, err_console,
                   print_table, say, variant_from)

MAX_TABLE_ROWS = 200


@app.command()
def infer(
    ctx: typer.Context,
    inputs: list[str] = typer.Argument(..., help="Image files, folders or glob patterns (--engine ray: also "
                                       ".txt listings of paths and URIs such as s3://bucket/photos/)."),
    model: str = typer.Option("mnist", "--model", "-m", help="Model name, model folder or .onnx file."),
    variant: str = VariantOption,
    int8: bool = Int8Option,
    fp32: bool = Fp32Option,
    fp16: bool = Fp16Option,
    device: str = typer.Option("auto", "--device", help="auto (CUDA if available) | cpu | cuda."),
    batch_size: int = typer.Option(256, "--batch-size", "-b", min=1, help="Images per inference batch."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="onnxruntime threads (default: the cores "
                                          "this process may use; --engine ray: per actor, default 1)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Decoding worker processes (default: the "
                                          "cores this process may use)."),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Descend into sub-folders."),
    top_k: int = typer.Option(1, "--topk", "-k", min=1, help="Report the k most likely labels (at most the "
                              "model's number of labels)."),
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
    from ..runtime.errors import EdgeclsError

    variant = variant_from(variant, int8, fp16, fp32)
    fmt = "json" if as_json else fmt
    if engine not in ("local", "ray"):
        raise EdgeclsError(f"unknown engine {engine!r}; choose local or ray")
    if engine == "ray":
        from .infer_ray import infer_on_ray

        return infer_on_ray(inputs, model=model, variant=variant, device=device, batch_size=batch_size,
                            threads=threads, recursive=recursive, top_k=top_k, output=output, fmt=fmt, force=force,
                            address=ray_address, actors=actors, workspace=workspace)
    if ray_address or actors:
        raise EdgeclsError("--ray-address and --actors need --engine ray")
    from ..api import infer as run_infer

    table = fmt in (None, "table") and output is None
    # Held until the command returns: a Ctrl-C once every image is classified (while the output is moved into place
    # and the summary printed) stops nothing, so a finished run never reports itself interrupted.
    stop = ctx.with_resource(stop_on_interrupt())
    with _progress() as progress:
        result = run_infer(inputs, model, variant=variant, device=device, batch_size=batch_size, threads=threads,
                           workers=workers, recursive=recursive, top_k=top_k, output=output, fmt=fmt, force=force,
                           stream=None if table or output is not None else _stdout_text(),
                           keep=MAX_TABLE_ROWS if table else 0, workspace=workspace, on_result=progress,
                           stop=lambda: stop.requested)
    _report(result, inputs, recursive, table)


def _report(result, inputs: list[str], recursive: bool, table: bool) -> None:
    """The table (when no other format), the problems, the summary line naming the variant; the exit code."""
    from ..runtime.errors import EdgeclsError
    from ..runtime.outputs import printable

    tally = result.tally
    if table:
        _print_table(result.results, result.top_k, tally.total)
    for note in result.notes:
        say((printable(note), "yellow"), target=err_console)
    for line in tally.problem_lines():
        say((line, "red"), target=err_console)
    skipped = f", {tally.skipped} skipped" if tally.skipped else ""
    unsure = f" ({tally.unsure} unsure)" if tally.unsure else ""
    say(f"{tally.total} images: {tally.ok} classified{unsure}, {tally.failed} failed{skipped} in "
        f"{result.elapsed_s:.2f}s ({result.rate:,.0f} img/s) with {result.choice.summary} on "
        f"{result.engine.provider}", target=err_console)
    if result.output is not None:
        say(f"predictions: {result.output}", target=err_console)
    if result.interrupted:
        say(("interrupted: results so far are kept", "yellow"), target=err_console)
    elif tally.total == 0 and not tally.skipped:
        raise EdgeclsError(f"no images found in {' '.join(inputs)}" + ("" if recursive else " (try --recursive)"))
    raise typer.Exit(exit_codes.for_run(tally.failed, tally.skipped, result.interrupted))


class _progress:
    """A progress line on a terminal (nothing in a pipe); called with each result."""

    def __enter__(self) -> "_progress":
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.bar = Progress(SpinnerColumn(), TextColumn("classifying"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=err_console,
                            disable=not err_console.is_terminal, transient=True)
        self.bar.__enter__()
        self.task, self.done, self.start = self.bar.add_task("infer", total=None, rate=""), 0, time.perf_counter()
        return self

    def __call__(self, _result) -> None:
        self.done += 1
        if self.done % 512 == 0:
            rate = f"{self.done / (time.perf_counter() - self.start):,.0f} img/s"
            self.bar.update(self.task, completed=self.done, rate=rate)

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)


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
