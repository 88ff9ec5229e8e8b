"""Library API: a Ray Dataset of images in, the same Dataset with prediction columns out."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional, Union

from ..runtime.metadata import read_info
from ..runtime.predictions import cap_top_k
from ..runtime.variant_policy import VariantChoice, choose_variant
from .predictor import Predictor
from .ray_import import require_ray

if TYPE_CHECKING:
    from ray.data import Dataset


def classify_dataset(
    ds: "Dataset",
    model: Union[str, os.PathLike, VariantChoice] = "mnist",
    *,
    variant: str = "auto",
    workspace: Optional[Union[str, os.PathLike]] = None,
    device: str = "auto",
    batch_size: int = 256,
    actors: Optional[int] = None,
    threads: int = 1,
    gpus_per_actor: float = 0,
    top_k: int = 1,
) -> "Dataset":
    """Classify every row of `ds` in a pool of `Predictor` actors; lazy, like any Ray Data transform.

    ds: rows with a `path` column and optionally the file's `bytes`, e.g.
        `ray.data.read_binary_files("s3://bucket/photos/", include_paths=True, num_cpus=0)`; without `bytes`
        each actor reads the path itself (it must be reachable from every node). Read with `num_cpus=0`
        (reads are I/O) when the actors may take every core: read tasks that wait for a free CPU never run.
    model, variant: a model name, folder or .onnx path and the variant, as `Classifier` takes them (or a
        `VariantChoice` already made). The variant is chosen once, here on the driver (auto: the fastest
        validated variant on this machine), and the chosen file's bytes travel to the actors: the whole cluster
        runs one variant, and worker nodes need edgecls installed but no copy of the model.
    actors: fixed pool size; None autoscales from 1 to what the cluster fits.
    threads: onnxruntime threads per actor, and the CPUs each actor reserves.
    gpus_per_actor: GPUs each actor reserves (use with device="cuda" or "auto" on GPU nodes).

    Returns `ds` without `bytes`, plus `prediction_columns(top_k)`: label, score, unsure, ..., error. A file
    that cannot be read or decoded becomes a row with its reason in `error`, never a failed job.
    """
    ray = require_ray()
    choice = model if isinstance(model, VariantChoice) else choose_variant(model, variant, device=device,
                                                                            workspace=workspace)
    path = choice.path
    top_k = cap_top_k(top_k, read_info(path).labels)  # the columns a model can fill
    compute = (ray.data.ActorPoolStrategy(size=actors) if actors
               else ray.data.ActorPoolStrategy(min_size=1, max_size=None))
    return ds.map_batches(
        Predictor,
        # By reference: the actors fetch the model once each, and their constructor arguments stay small.
        fn_constructor_kwargs={"model": ray.put(path.read_bytes()), "model_name": path.name, "device": device,
                               "threads": threads, "top_k": top_k},
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=compute,
        num_cpus=threads,
        num_gpus=gpus_per_actor or None,
    )
