"""`edgecls infer --engine ray`: edgecls.api.infer_ray with progress, the summary and exit codes of local infer."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from . import exit_codes
from .root import err_console, say

LOG_EVERY_S = 30.0  # progress lines when stderr is not a terminal (a RayJob's log)


def infer_on_ray(inputs: list[str], *, model: str, variant: str, device: str, batch_size: int,
                 threads: Optional[int], recursive: bool, top_k: int, output: Optional[Path], fmt: Optional[str],
                 force: bool, address: Optional[str], actors: Optional[int], workspace: Optional[Path]) -> None:
    from ..api import infer_ray
    from ..runtime.errors import EdgeclsError

    with _RayProgress() as progress:
        result = infer_ray(inputs, model, variant=variant, device=device, batch_size=batch_size, threads=threads,
                           recursive=recursive, top_k=top_k, output=output, fmt=fmt, force=force, address=address,
                           actors=actors, workspace=workspace, on_start=progress.started, on_progress=progress)
    if result.error is not None:
        kept = f" (partial output kept: {result.output})" if result.output else ""
        raise EdgeclsError(f"the Ray job failed: {result.error}{kept}")
    _summarise(result)
    if result.interrupted:
        say(("interrupted: results so far are kept", "yellow"), target=err_console)
    elif result.ok + result.failed == 0 and not result.skipped:
        raise EdgeclsError(f"no images found in {' '.join(inputs)}")
    raise typer.Exit(exit_codes.for_run(result.failed, len(result.skipped), result.interrupted))


def _summarise(result) -> None:
    from ..runtime.outputs import MAX_LISTED, printable

    for skip in result.skipped[:MAX_LISTED]:
        say((f"skipped {printable(skip.path)}: {skip.reason}", "red"), target=err_console)
    if len(result.skipped) > MAX_LISTED:
        say((f"... and {len(result.skipped) - MAX_LISTED} more skipped entries", "red"), target=err_console)
    for path, error in result.failures:
        say((f"failed {printable(path)}: {printable(error)}", "red"), target=err_console)
    if result.failed > len(result.failures):
        say((f"... and {result.failed - len(result.failures)} more failures (all in the output)", "red"),
            target=err_console)
    if not result.cluster:  # nothing to run: every input was skipped
        return
    unsure = f" ({result.unsure} unsure)" if result.unsure else ""
    skips = f", {len(result.skipped)} skipped" if result.skipped else ""
    say(f"{result.ok + result.failed} images: {result.ok} classified{unsure}, {result.failed} failed{skips} in "
        f"{result.elapsed_s:.2f}s ({result.rate:,.0f} img/s) with {result.choice.summary} on Ray", target=err_console)
    if result.output is not None:
        say(f"predictions: {result.output}", target=err_console)


class _RayProgress:
    """A progress bar on a terminal; a line every LOG_EVERY_S otherwise (a RayJob's log)."""

    def __enter__(self) -> "_RayProgress":
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.bar = Progress(SpinnerColumn(), TextColumn("classifying on Ray"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=err_console,
                            disable=not err_console.is_terminal, transient=True)
        self.task = None
        self.start = self.last_line = time.perf_counter()
        return self

    def started(self, result) -> None:
        pool = f"{result.actors} actor{'s' * (result.actors != 1)}" if result.actors else "an autoscaling pool of actors"
        say(f"classifying on the {result.cluster} with {pool} x {result.threads} thread{'s' * (result.threads != 1)}",
            target=err_console)
        self.bar.__enter__()
        self.task = self.bar.add_task("infer", total=None, rate="")
        self.start = self.last_line = time.perf_counter()

    def __call__(self, done: int, total: Optional[int]) -> None:
        now = time.perf_counter()
        rate = f"{done / max(now - self.start, 1e-9):,.0f} img/s"
        self.bar.update(self.task, completed=done, total=total, rate=rate)
        if not err_console.is_terminal and now - self.last_line >= LOG_EVERY_S:
            self.last_line = now
            of = f" of {total:,}" if total else ""
            say(f"{done:,}{of} images, {rate}", target=err_console)

    def __exit__(self, *exc) -> None:
        if self.task is not None:
            self.bar.__exit__(*exc)
