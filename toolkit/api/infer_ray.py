"""`edgecls.api.infer_ray`: the same classification as `infer`, run by Ray Data on a cluster.

Everything that can be wrong with the request (missing extra, model, sources, output, unreachable cluster)
raises one EdgeclsError before the job starts. The variant is chosen once, here on the driver, and named in
the result and in the Parquet files' metadata. Rows arrive in completion order, not input order.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

from ..runtime.files import Skipped
from ..runtime.outputs import MAX_LISTED
from ..runtime.variant_policy import VariantChoice

PathLike = Union[str, os.PathLike]
Progress = Callable[[int, Optional[int]], None]  # (images answered, images in all when known)


@dataclass
class RayInferResult:
    choice: VariantChoice
    cluster: str  # where it ran, e.g. "local Ray instance: 1 node, 2 CPUs"
    actors: Optional[int]
    threads: int
    top_k: int
    ok: int = 0
    failed: int = 0
    unsure: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # the first MAX_LISTED (path, reason)
    skipped: list[Skipped] = field(default_factory=list)  # what the local listing left out
    elapsed_s: float = 0.0
    output: Optional[Path] = None  # the predictions written (a .partial file when interrupted)
    interrupted: bool = False
    error: Optional[str] = None  # the job itself failed (a bad file never does: it is a row)

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else 0.0


def infer_ray(inputs: Sequence[str], model: PathLike = "mnist", *, variant: str = "auto", device: str = "auto",
              batch_size: int = 256, threads: Optional[int] = None, recursive: bool = False, top_k: int = 1,
              output: Optional[PathLike] = None, fmt: Optional[str] = None, force: bool = False,
              address: Optional[str] = None, actors: Optional[int] = None, workspace: Optional[PathLike] = None,
              on_start: Callable[[RayInferResult], None] = lambda r: None,
              on_progress: Progress = lambda done, total: None) -> RayInferResult:
    """Classify `inputs` (folders, globs, .txt listings, storage URIs) on the Ray cluster at `address` (None:
    $RAY_ADDRESS, else a private local instance) into `output` (a folder of Parquet parts, FILE.parquet or
    FILE.csv). `actors` None autoscales; each actor runs `threads` onnxruntime threads (default 1)."""
    from ..distributed import classify_dataset, prediction_schema, require_ray
    from ..distributed.cluster import cluster_address, ray_cluster
    from ..distributed.outputs import ArrowSink, check_ray_output
    from ..distributed.sources import image_dataset, resolve_sources
    from ..runtime.metadata import read_info
    from ..runtime.predictions import cap_top_k
    from ..runtime.variant_policy import choose_variant

    require_ray()
    choice = choose_variant(model, variant, device=device, workspace=workspace)  # once, on the driver
    out = Path(output) if output is not None else None
    fmt, folder = check_ray_output(out, fmt, list(inputs), recursive=recursive, force=force, model=choice.path)
    threads = threads or 1
    result = RayInferResult(choice, "", actors, threads, cap_top_k(top_k, read_info(choice.path).labels))
    sources = resolve_sources(list(inputs), recursive=recursive)
    result.skipped = sources.skipped
    if not sources.paths and not sources.uri_roots:  # everything named was skipped (reasons listed): no job
        return result
    with ray_cluster(cluster_address(address)) as where:
        result.cluster = where
        predictions = classify_dataset(image_dataset(sources, batch_size), choice, device=device,
                                       batch_size=batch_size, actors=actors, threads=threads,
                                       gpus_per_actor=1 if device == "cuda" else 0, top_k=result.top_k)
        sink = ArrowSink(out, fmt, folder, metadata=parquet_metadata(choice))  # all checked: now files appear
        on_start(result)
        _consume(result, predictions, sink, sources.count, on_progress)
    if result.error is not None or result.interrupted:
        result.output = sink.abort()
    else:
        result.output = sink.close(prediction_schema(result.top_k))
    return result


def parquet_metadata(choice: VariantChoice) -> dict[str, str]:
    """Which model file and variant answered, for the files' schema metadata."""
    return {"edgecls.model_file": choice.path.name, "edgecls.variant": choice.variant,
            "edgecls.variant_choice": json.dumps(choice.to_dict())}


def _consume(result: RayInferResult, predictions, sink, total: Optional[int], on_progress: Progress) -> None:
    """Drain the prediction stream into the sink: counts, the first failures, progress."""
    import pyarrow.compute as pc
    from ray.exceptions import RayError

    start = time.perf_counter()
    try:
        for table in predictions.iter_batches(batch_size=None, batch_format="pyarrow"):
            failed = table.filter(pc.is_valid(table.column("error")))
            result.failed += failed.num_rows
            result.ok += table.num_rows - failed.num_rows
            result.unsure += pc.sum(table.column("unsure")).as_py() or 0
            room = MAX_LISTED - len(result.failures)  # memory stays bounded
            if failed.num_rows and room > 0:
                result.failures += list(zip(failed.column("path").to_pylist()[:room],
                                            failed.column("error").to_pylist()[:room]))
            sink.write(table)
            result.elapsed_s = time.perf_counter() - start
            on_progress(result.ok + result.failed, total)
    except KeyboardInterrupt:
        result.interrupted = True
    except RayError as exc:  # actors that cannot start, a lost cluster: one line, Ray's root cause last
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        result.error = lines[-1] if lines else type(exc).__name__
    result.elapsed_s = time.perf_counter() - start
