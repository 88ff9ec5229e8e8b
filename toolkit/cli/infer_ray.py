"""`edgecls infer --engine ray`: the same classification, run by Ray Data on a cluster.

Everything that can be wrong with the request (missing extra, model, SOURCE, output, unreachable cluster)
fails with one line before the job starts. Results stream back to this process, which shows progress and
writes the output; rows arrive in completion order, not input order. Exit codes are local `infer`'s.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from ..runtime import exit_codes
from ..runtime.errors import EdgeclsError
from ..runtime.outputs import MAX_LISTED, printable
from .root import err_console

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
    force: bool,
    address: Optional[str],
    actors: Optional[int],
    workspace: Optional[Path],
) -> None:
    from ..distributed import classify_dataset, prediction_schema, require_ray
    from ..distributed.cluster import cluster_address, ray_cluster
    from ..distributed.sources import image_dataset, resolve_sources
    from ..runtime.store import find_onnx
    from .ray_outputs import ArrowSink, check_ray_output

    require_ray()
    model_path = find_onnx(model, variant, workspace)
    fmt, folder = check_ray_output(output, fmt, inputs, recursive=recursive, force=force, model=model_path)
    assert output is not None  # check_ray_output refuses a missing --output
    threads = threads or 1
    sources = resolve_sources(inputs, recursive=recursive)
    if not sources.paths and not sources.uri_roots:  # everything named was skipped (reasons listed): no job
        _report_skips(sources.skipped)
        raise typer.Exit(exit_codes.INPUTS_SKIPPED)
    with ray_cluster(cluster_address(address)) as where:
        predictions = classify_dataset(image_dataset(sources, batch_size), model_path, device=device,
                                       batch_size=batch_size, actors=actors, threads=threads,
                                       gpus_per_actor=1 if device == "cuda" else 0, top_k=top_k)
        pool = f"{actors} actor{'s' * (actors != 1)}" if actors else "an autoscaling pool of actors"
        err_console.print(f"classifying on the {where} with {pool} x {threads} thread{'s' * (threads != 1)}",
                          highlight=False, markup=False)
        run = _Run(ArrowSink(output, fmt, folder))
        run.consume(predictions, sources.count)
    if run.error is not None:  # the job itself failed (a bad file never does: it is a row)
        kept = run.sink.abort()
        lines = [ln.strip() for ln in str(run.error).splitlines() if ln.strip()]
        reason = lines[-1] if lines else type(run.error).__name__  # Ray's messages end with the root cause
        raise EdgeclsError(f"the Ray job failed: {reason}" + (f" (partial output kept: {kept})" if kept else ""))
    kept = run.sink.abort() if run.interrupted else run.sink.close(prediction_schema(top_k))
    _report_skips(sources.skipped)
    run.summarise(model_path.name, kept, skipped=len(sources.skipped))
    if run.interrupted:
        err_console.print("interrupted: results so far are kept", style="yellow", markup=False)
        raise typer.Exit(exit_codes.INTERRUPTED)
    if run.ok + run.failed == 0:
        raise EdgeclsError(f"no images found in {' '.join(inputs)}")
    raise typer.Exit(exit_codes.INPUTS_SKIPPED if run.failed or sources.skipped else exit_codes.OK)


def _report_skips(skipped: list) -> None:
    for skip in skipped[:MAX_LISTED]:
        err_console.print(f"skipped {printable(skip.path)}: {skip.reason}", highlight=False, markup=False, style="red")
    if len(skipped) > MAX_LISTED:
        err_console.print(f"... and {len(skipped) - MAX_LISTED} more skipped entries", style="red")


class _Run:
    """Drains the prediction stream into the sink: counts, the first failures, progress."""

    def __init__(self, sink) -> None:
        self.sink = sink
        self.ok = self.failed = self.unsure = 0
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
                    self.failed += failed.num_rows
                    self.ok += table.num_rows - failed.num_rows
                    self.unsure += pc.sum(table.column("unsure")).as_py() or 0
                    room = MAX_LISTED - len(self.failures)  # memory stays bounded
                    if failed.num_rows and room > 0:
                        self.failures += list(zip(failed.column("path").to_pylist()[:room],
                                                  failed.column("error").to_pylist()[:room]))
                    self.sink.write(table)
                    done = self.ok + self.failed
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

    def summarise(self, model_name: str, where: Optional[Path], skipped: int) -> None:
        for path, error in self.failures:
            err_console.print(f"failed {printable(path)}: {printable(error)}", highlight=False, markup=False,
                              style="red")
        if self.failed > len(self.failures):
            err_console.print(f"... and {self.failed - len(self.failures)} more failures (all in the output)",
                              style="red")
        rate = self.ok / self.elapsed if self.elapsed > 0 else 0.0
        unsure = f" ({self.unsure} unsure)" if self.unsure else ""
        skips = f", {skipped} skipped" if skipped else ""
        err_console.print(f"{self.ok + self.failed} images: {self.ok} classified{unsure}, {self.failed} failed"
                          f"{skips} in {self.elapsed:.2f}s ({rate:,.0f} img/s) with {model_name} on Ray",
                          highlight=False, markup=False)
        if where is not None:
            err_console.print(f"predictions: {where}", highlight=False, markup=False)
