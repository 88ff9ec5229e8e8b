"""ONNX Runtime's own file format (.ort): pre-optimised models for minimal builds and faster session start.

The conversion is what onnxruntime.tools.convert_onnx_models_to_ort does (optimise fully, save as ORT, NCHWc
layout excluded so the file runs on ARM); every .ort is loaded back and its outputs compared with the .onnx
it came from before the caller keeps it. Used by the mobile files and the web bundle alike.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ExportError

FP32_MAX_DIFF = 1e-4  # ORT-format fp32 vs ONNX fp32: only fusions differ
INT8_MAX_DIFF = 2e-2  # int8: requantised fused kernels may round differently
SAMPLES = 64


def tolerance(variant: str) -> float:
    """How far an ORT-format file may stray from the .onnx variant it came from."""
    return FP32_MAX_DIFF if variant == "fp32" else INT8_MAX_DIFF


def sample_inputs(shape: tuple[int, ...], n: int = SAMPLES, seed: int = 0) -> np.ndarray:
    """Seeded pixel batches (0-255) with structure: smooth blobs, edges and noise, not only flat noise."""
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    blobs = rng.uniform(0, 255, (n, 1)) * np.sin(np.linspace(0, rng.uniform(2, 20), size))[None, :] ** 2
    noise = rng.uniform(0, 255, (n, size))
    mix = np.where(rng.random((n, 1)) < 0.5, blobs, noise)
    return np.clip(mix, 0, 255).astype(np.float32).reshape((n, *shape))


def _to_ort(onnx_path: Path, ort_path: Path) -> None:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.optimized_model_filepath = str(ort_path)
    so.add_session_config_entry("session.save_model_format", "ORT")
    ort.InferenceSession(str(onnx_path), sess_options=so, providers=["CPUExecutionProvider"],
                         disabled_optimizers=["NchwcTransformer"])


def _compare(onnx_path: Path, ort_path: Path, shape: tuple[int, ...]) -> dict:
    import onnxruntime as ort

    batch = sample_inputs(shape)
    outputs = []
    for path in (onnx_path, ort_path):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        outputs.append(session.run(None, {session.get_inputs()[0].name: batch})[0])
    diff = float(np.abs(outputs[0] - outputs[1]).max())
    agree = float((outputs[0].argmax(1) == outputs[1].argmax(1)).mean())
    return {"max_abs_diff": diff, "top1_agreement": agree, "samples": len(batch)}


def convert_checked(onnx_path: Path, ort_path: Path, shape: tuple[int, ...], limit: float) -> dict:
    """Convert one model to ORT format and compare outputs; raises ExportError (file removed) beyond `limit`."""
    try:
        _to_ort(onnx_path, ort_path)
    except Exception as exc:  # noqa: BLE001 - onnxruntime's conversion errors vary
        raise ExportError(f"{onnx_path}: conversion to ORT format failed: {exc}") from None
    check = _compare(onnx_path, ort_path, shape)
    if check["max_abs_diff"] > limit:
        ort_path.unlink(missing_ok=True)
        raise ExportError(f"{ort_path.name}: ORT-format outputs differ from {onnx_path.name} by "
                          f"{check['max_abs_diff']:.2e} (limit {limit:.0e}); nothing written")
    return check
