"""`edgecls.api.bench`: one table of format x device x batch size (size, accuracy, agreement, speed, memory),
then edgecls against its peers in one process, taking turns; saved beside the model in the workspace."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

PathLike = Union[str, os.PathLike]
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class BenchResult:
    report: dict[str, Any]  # what bench-<devices>.json holds
    saved: Optional[Path]  # the .md written beside the .json; None when no row could run (nothing saved)
    failed: int  # rows that could not run (each says why in the report)
    total: int


def bench(target: PathLike, *, device: str = "auto", batch_sizes: Sequence[int] = (1, 32, 256),
          threads: Optional[int] = None, limit: Optional[int] = None, repeats: int = 5, peers: bool = True,
          data: Optional[PathLike] = None, data_dir: Optional[PathLike] = None, workspace: Optional[PathLike] = None,
          on_row: Callable[[Any], None] = lambda outcome: None, on_stage: Callable[[str], None] = lambda s: None
          ) -> BenchResult:
    """Benchmark a model name, .keras or .onnx file: every format row in its own process (`on_row` hears each),
    then (peers, CPU) edgecls against Keras, TFLite fp32/int8 and Keras's own ONNX export, taking turns."""
    from ..bench.runner import (BenchConfig, failed_rows, int8_speed_note, markdown, outcomes_to_json, plan_rows,
                                run_bench)
    from ..machine import describe_machine
    from ..runtime.atomic import write_bytes_atomic, write_json_atomic
    from ..runtime.cores import usable_cores

    devices = _devices(device)
    keras_path, name, onnx_files, x, y, dataset, out_dir, all_variants, calibration = _inputs(
        target, Path(data) if data else None, limit, data_dir, workspace, devices, peers)
    cfg = BenchConfig(batch_sizes=tuple(batch_sizes), devices=devices, threads=usable_cores(threads),
                      repeats=repeats)
    outcomes = run_bench(plan_rows(keras_path, onnx_files, devices), x, y, cfg, on_row=on_row)
    report = outcomes_to_json(outcomes, cfg, {
        "name": name, "dataset": dataset, "samples": int(len(x)), "machine": describe_machine(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    if peers and "cpu" in devices and keras_path is not None:
        on_stage("edgecls vs peers in one process, taking turns ...")
        _add_head_to_head(report, keras_path, all_variants, x, y, calibration, cfg.threads, repeats)
    report["int8_note"] = int8_speed_note(report)
    failed, total = failed_rows(report)
    if failed == total:  # keep the previous, measured results rather than replace them with a table of errors
        return BenchResult(report, None, failed, total)
    stem = "bench-" + "+".join(devices)
    write_json_atomic(out_dir / f"{stem}.json", report)
    write_bytes_atomic(out_dir / f"{stem}.md", markdown(report).encode())
    return BenchResult(report, out_dir / f"{stem}.md", failed, total)


def _devices(device: str) -> tuple[str, ...]:
    from ..bench.runner import cuda_available
    from ..runtime.errors import EdgeclsError

    if device not in DEVICES:
        raise EdgeclsError(f"unknown device {device!r}; choose {', '.join(DEVICES)}")
    has_cuda = cuda_available()
    if device == "cuda" and not has_cuda:
        raise EdgeclsError("device cuda requested but onnxruntime has no CUDA provider here (install edgecls[gpu])")
    return ("cpu", "cuda") if device == "auto" and has_cuda else (("cpu",) if device == "auto" else (device,))


def _inputs(target, folder, limit, data_dir, workspace, devices, peers):
    """What to run and on which images: a bare .onnx file, or a model name / .keras file with its variants."""
    from ..runtime.store import locate

    if locate(target, workspace).is_onnx:
        keras_path, name, onnx_files, x, y, dataset, out_dir = _bare_onnx(Path(target), folder, limit, data_dir,
                                                                         workspace)
        return keras_path, name, onnx_files, x, y, dataset, out_dir, onnx_files, None
    from ..keras_source import resolve_source

    source = resolve_source(target, workspace)
    plan = _keras_plan(source, folder, data_dir)
    keras_path, name, onnx_files, x, y, dataset, out_dir = _keras_source(source, plan, limit, devices)
    calibration = _calibration_pixels(plan, x, y) if peers and "cpu" in devices else None
    return keras_path, name, onnx_files, x, y, dataset, out_dir, source.variant_files(), calibration


def _keras_plan(source, folder, data_dir):
    """The data plan of a named model (None for a bare .keras file without a card and without --data)."""
    from ..data.plan import DataPlan

    if source.card is not None:
        return DataPlan.for_card(source.card, folder=folder, data_dir=data_dir)
    if folder is None:
        return None
    from ..exporters.convert import image_input_spec
    from ..keras_files import load_keras_model
    from ..runtime.transforms import Pipeline

    return DataPlan(None, image_input_spec(load_keras_model(source.keras_path)), Pipeline(), folder=folder)


def _keras_source(source, plan, limit, devices):
    """A resolved model name or .keras file: its Keras model, its exported variants, and its own test split (or
    --data), through its declared preprocessing; results are written to the workspace."""
    from ..exporters.formats import runs_on

    onnx_files = {v: p for v, p in source.variant_files().items() if p.is_file() and runs_on(v, devices)}
    if plan is not None:
        test = plan.test(limit)
        x, y, dataset = test.x, test.y, test.description
    else:
        import numpy as np

        from ..exporters.convert import image_input_spec
        from ..keras_files import load_keras_model

        spec = image_input_spec(load_keras_model(source.keras_path))
        x = np.random.default_rng(0).integers(0, 256, (limit or 1000, *spec.shape), dtype=np.uint8)
        y, dataset = None, "random pixels (no labels: agreement only)"
    return source.keras_path, source.name, onnx_files, x, y, dataset, source.output_dir


def _bare_onnx(path: Path, folder, limit, data_dir, workspace):
    """An exported .onnx file without its Keras source: its one ONNX row, scored on --data (or the test split
    its model card records); results go to the workspace folder of its model name."""
    from ..data.plan import plan_for_onnx
    from ..runtime.metadata import read_info
    from ..runtime.store import workspace_folder

    info = read_info(path)
    test = plan_for_onnx(path, info, folder=folder, data_dir=data_dir, workspace=workspace).test(limit)
    name = info.name or path.stem.split(".")[0]
    from ..exporters.formats import VARIANT_FORMATS

    variant = info.variant if info.variant in VARIANT_FORMATS else "fp32"
    return None, name, {variant: path}, test.x, test.y, test.description, workspace_folder(name, workspace).directory


def _calibration_pixels(plan, x, y):
    """TFLite int8's representative data: 512 of the model's own training images through its declared
    preprocessing; with no training data known, the pixels the rows are scored on."""
    from ..runtime.errors import EdgeclsError

    if y is None or plan is None or plan.card is None:
        return x
    try:
        return plan.calibration(512).x
    except EdgeclsError:
        return x  # the training data is gone: calibrate on the test pixels rather than not compare at all


def _add_head_to_head(report: dict, keras_path, files: dict, x, y, calibration, threads: int,
                      repeats: int) -> None:
    from ..bench.headtohead import ratio_lines
    from ..bench.runner import run_head_to_head

    files = {v: p for v, p in files.items() if p.is_file()}
    try:
        report["head_to_head"] = run_head_to_head(keras_path if keras_path.is_file() else None, files, x, y,
                                                  calibration, threads, rounds=repeats)
    except Exception as exc:  # noqa: BLE001 - the per-format rows stand on their own; say why this part is missing
        report["head_to_head"] = {"error": str(exc)}
    report["head_to_head_summary"] = ratio_lines(report["head_to_head"]) if "rows" in report["head_to_head"] else []


