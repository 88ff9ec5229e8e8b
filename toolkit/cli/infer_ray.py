"""`edgecls infer --engine ray`: the same classification, run by Ray Data on a cluster.

Everything that can be wrong with the request (missing extra, model, SOURCE, output, unreachable cluster)
fails with one line before the job starts. Results stream back to this process, which shows progress and
writes the output; rows arrive in completion order, not input order.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from ..runtime.errors import EdgeclsError
from .app import err_console

MAX_FAILURES_SHOWN = 50
LOG_EVERY_S = 30.0  # progress lines when stderr is not a terminal (a RayJob's log)


def infer_on_ray(
    inputs: list[str],
    *,
    model: str,
    variant: str,
    device: str,
    batch_size: int,
    threads: Optional[int],
    recursive: bool,
    top_k: int,
    output: Optional[Path],
    fmt: Optional[str],
    address: Optional[str],
    actors: Optional[int],
    artifacts: Optional[Path],
) -> None:
    from ..distributed import classify_dataset, prediction_schema, require_ray
    from ..distributed.cluster import cluster_address, ray_cluster
    from ..distributed.sources import image_dataset, resolve_sources
    from ..runtime.paths import resolve_model
    from .ray_outputs import ArrowSink, output_format

    require_ray()
    fmt, folder = output_format(output, fmt)  # raises when --output is missing
    assert output is not None
    model_path = resolve_model(model, variant, artifacts)
    threads = threads or 1
    sources = resolve_sources(inputs, recursive=recursive)
    with ray_cluster(cluster_address(address)) as where:
        predictions = classify_dataset(image_dataset(sources, batch_size), model_path, device=device,
                                       batch_size=batch_size, actors=actors, threads=threads,
                                       gpus_per_actor=1 if device == "cuda" else 0, top_k=top_k)
        pool = f"{actors} actor{'s' * (actors != 1)}" if actors else "an autoscaling pool of actors"
        err_console.print(f"classifying on the {where} with {pool} x {threads} thread{'s' * (threads != 1)}",
                          highlight=False, markup=False)
        run = _Run(ArrowSink(output, fmt, folder))
        run.consume(predictions, sources.count)
    counts = run.counts
    if run.error is not None:  # the job itself failed (a bad file never does: it is a row)
        kept = run.sink.abort()
        lines = [ln.strip() for ln in str(run.error).splitlines() if ln.strip()]
        reason = lines[-1] if lines else type(run.error).__name__  # Ray's messages end with the root cause
        raise EdgeclsError(f"the Ray job failed: {reason}"
                           + (f" (partial output kept: {kept})" if kept else ""))
    kept = run.sink.abort() if run.interrupted else run.sink.close(prediction_schema(top_k))
    _summarise(counts, run.failures, run.elapsed, model_path.name, kept)
    if run.interrupted:
        err_console.print("[yellow]interrupted: results so far are kept[/]")
        raise typer.Exit(130)
    if counts["ok"] + counts["failed"] == 0:
        raise EdgeclsError(f"no images found in {' '.join(inputs)}")
    if counts["failed"]:
        raise typer.Exit(1)


class _Run:
    """Drains the prediction stream into the sink: counts, the first failures, progress."""

    def __init__(self, sink) -> None:
        self.sink = sink
        self.counts = {"ok": 0, "failed": 0}
        self.failures: list[tuple[str, str]] = []
        self.elapsed = 0.0
        self.interrupted = False
        self.error: Optional[BaseException] = None

    def consume(self, predictions, total: Optional[int]) -> None:
        import pyarrow.compute as pc
        from ray.exceptions import RayError
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                                   TimeElapsedColumn)

        progress = Progress(SpinnerColumn(), TextColumn("classifying on Ray"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=err_console,
                            disable=not err_console.is_terminal, transient=True)
        start = last_line = time.perf_counter()
        try:
            with progress:
                task = progress.add_task("infer", total=total, rate="")
                for table in predictions.iter_batches(batch_size=None, batch_format="pyarrow"):
                    failed = table.filter(pc.is_valid(table.column("error")))
                    self.counts["failed"] += failed.num_rows
                    self.counts["ok"] += table.num_rows - failed.num_rows
                    room = MAX_FAILURES_SHOWN - len(self.failures)  # memory stays bounded
                    if failed.num_rows and room > 0:
                        self.failures += list(zip(failed.column("path").to_pylist()[:room],
                                                  failed.column("error").to_pylist()[:room]))
                    self.sink.write(table)
                    done = self.counts["ok"] + self.counts["failed"]
                    now = time.perf_counter()
                    rate = f"{done / (now - start):,.0f} img/s"
                    progress.update(task, completed=done, rate=rate)
                    if not err_console.is_terminal and now - last_line >= LOG_EVERY_S:  # job logs: a line now and then
                        last_line = now
                        of = f" of {total:,}" if total else ""
                        err_console.print(f"{done:,}{of} images, {rate}", highlight=False, markup=False)
        except KeyboardInterrupt:
            self.interrupted = True
        except RayError as exc:  # actors that cannot start, a lost cluster: reported as one line
            self.error = exc
        self.elapsed = time.perf_counter() - start


def _summarise(counts: dict, failures: list, elapsed: float, model_name: str, where: Optional[Path]) -> None:
    for path, error in failures:
        err_console.print(f"failed {path}: {error}", highlight=False, markup=False, style="red")
    if counts["failed"] > len(failures):
        err_console.print(f"... and {counts['failed'] - len(failures)} more failures (all listed in the output)",
                          style="red")
    total = counts["ok"] + counts["failed"]
    rate = counts["ok"] / elapsed if elapsed > 0 else 0.0
    err_console.print(f"{total} images: {counts['ok']} classified, {counts['failed']} failed in {elapsed:.2f}s "
                      f"({rate:,.0f} img/s) with {model_name} on Ray", highlight=False, markup=False)
    if where is not None:
        err_console.print(f"predictions: {where}", highlight=False)
