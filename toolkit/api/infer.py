"""`edgecls.api.infer`: classify files, folders and globs on this machine, with what `edgecls infer` does
(output checked before any work, predictions written atomically, bad inputs counted, never fatal)."""

from __future__ import annotations

import os
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Optional, Sequence, Union

from ..runtime.engine import EnginePlan
from ..runtime.outputs import PredictionFile, RunTally, Writer, check_output, choose_format
from ..runtime.stream import Result
from ..runtime.variant_policy import VariantChoice, choose_variant

PathLike = Union[str, os.PathLike]


@dataclass
class InferResult:
    """What a run did: which file ran and how, the tally, where the predictions are."""

    choice: VariantChoice  # the model file that ran, its variant and why
    engine: EnginePlan
    top_k: int  # as written (capped at the model's number of labels)
    tally: RunTally
    elapsed_s: float
    output: Optional[Path] = None  # the predictions file (its .partial when interrupted), None when not written
    interrupted: bool = False
    results: list[Result] = field(default_factory=list)  # the first `keep` results, in input order
    notes: list[str] = field(default_factory=list)  # things worth saying (a capped top-k, int8 not faster here)

    @property
    def rate(self) -> float:
        """Images classified per second."""
        return self.tally.ok / self.elapsed_s if self.elapsed_s > 0 else 0.0


def infer(inputs: Sequence[PathLike], model: PathLike = "mnist", *, variant: str = "auto", device: str = "auto",
          batch_size: int = 256, threads: Optional[int] = None, workers: Optional[int] = None,
          recursive: bool = False, top_k: int = 1, output: Optional[PathLike] = None, fmt: Optional[str] = None,
          force: bool = False, stream: Optional[IO[str]] = None, keep: int = 0, workspace: Optional[PathLike] = None,
          on_result: Optional[Callable[[Result], None]] = None,
          stop: Callable[[], bool] = lambda: False) -> InferResult:
    """Classify `inputs` (files, folders, globs) with `model` (a name, folder or .onnx file; `variant` as
    `choose_variant` takes it). Predictions go to `output` (.csv/.json/.jsonl, or `fmt`), or as `fmt` to the
    text handle `stream`, and the first `keep` results come back in the result. `stop()` is asked between
    results (Ctrl-C handling); the predictions written so far are then kept in the `.partial` file."""
    from ..runtime.classifier import Classifier
    from ..runtime.cores import usable_cores
    from ..runtime.files import iter_image_files
    from ..runtime.predictions import cap_top_k
    from ..runtime.stream import classify_stream
    from ..runtime.workers import start_early

    workers = workers or usable_cores()
    start_early(workers)  # the decoding workers' server starts while the model is found and loaded
    inputs = [os.fspath(i) for i in inputs]
    choice = choose_variant(model, variant, device=device, workspace=workspace)
    out = Path(output) if output is not None else None
    if out is not None:  # before the model loads and before the first image is decoded
        check_output(out, inputs, recursive=recursive, force=force, protected=[choice.path])
    fmt = choose_format(out, fmt)
    # Decoding workers share the cores between batches: idle onnxruntime threads must not spin.
    clf = Classifier(choice, device=device, threads=threads, spin=False)
    k = cap_top_k(top_k, clf.labels)
    notes = [f"top-k {top_k}: the model has {len(clf.labels)} labels; showing all {k}"] if top_k > k else []
    notes += [choice.warning] if choice.warning else []
    sink = PredictionFile(out, fmt, k) if out is not None else None
    writer = sink or (Writer(stream, fmt, k) if stream is not None and fmt != "table" else None)
    result = InferResult(choice, clf.engine, k, RunTally(), 0.0, notes=notes)
    files = iter_image_files(inputs, recursive=recursive, on_skip=result.tally.skip)
    start = time.perf_counter()
    try:
        with closing(classify_stream(clf, files, batch_size=batch_size, workers=workers,
                                     top_k=k)) as results:
            for r in results:
                if stop():
                    result.interrupted = True
                    break
                _take(result, r, writer, keep, on_result)
    except KeyboardInterrupt:
        result.interrupted = True
    result.elapsed_s = time.perf_counter() - start
    result.output = _finish(sink, writer, result)
    return result


def _take(result: InferResult, r: Result, writer: Optional[Writer], keep: int,
          on_result: Optional[Callable[[Result], None]]) -> None:
    result.tally.add(r)
    if writer is not None:
        writer.write(r)
    if len(result.results) < keep:
        result.results.append(r)
    if on_result is not None:
        on_result(r)


def _finish(sink: Optional[PredictionFile], writer: Optional[Writer], result: InferResult) -> Optional[Path]:
    """Interrupted: keep the .partial; nothing classified: leave any old output alone; else move into place."""
    if sink is None:
        if writer is not None:
            writer.close()
        return None
    if result.interrupted:
        return sink.keep_partial()
    if result.tally.total == 0:
        sink.discard()
        return None
    return sink.commit()
