"""`edgecls export NAME --mobile`: ORT-format models plus the operator list onnxruntime's reduced-size
build consumes (`build.sh --minimal_build --include_ops_by_config <name>.required_operators.config`).

The conversion is what onnxruntime.tools.convert_onnx_models_to_ort does (optimise fully, save as ORT,
NCHWc layout excluded so the file runs on ARM); every .ort is then loaded with onnxruntime and its outputs
compared with the .onnx it came from before anything is written under its final name."""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ExportError
from .bundle import model_json, read_info
from .operators import check_operators

FP32_MAX_DIFF = 1e-4  # ORT-format fp32 vs ONNX fp32: only fusions differ
INT8_MAX_DIFF = 2e-2  # int8: requantised fused kernels may round differently
SAMPLES = 64


@dataclass
class MobileExport:
    folder: Path
    models: dict[str, dict] = field(default_factory=dict)  # file name -> size, max diff, agreement
    config: str = ""
    operators: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {"folder": str(self.folder), "models": self.models, "required_operators": self.config,
                "operators": self.operators}


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


def export_mobile(models: list[Path], out_dir: Path, log: Callable[[str], None] = lambda m: None) -> MobileExport:
    """Convert each exported .onnx (fp32, int8) to .ort, validate, and write the required-operators config."""
    from onnxruntime.tools.ort_format_model.utils import create_config_from_models

    logging.getLogger("ort_format_model.utils").setLevel(logging.WARNING)  # it logs its temp path at INFO

    if not models:
        raise ExportError("--mobile: no exported .onnx model to convert")
    for onnx_path in models:
        check_operators(onnx_path, "onnxruntime (mobile)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = MobileExport(out_dir)
    name = read_info(models[0]).name or models[0].name.split(".")[0]
    with tempfile.TemporaryDirectory(prefix=".mobile-", dir=out_dir) as tmp:
        staged = []
        for onnx_path in models:
            info = read_info(onnx_path)
            ort_path = Path(tmp) / (onnx_path.name[: -len(".onnx")] + ".ort")
            limit = FP32_MAX_DIFF if info.variant == "fp32" else INT8_MAX_DIFF
            check = convert_checked(onnx_path, ort_path, info.input_spec.shape, limit)
            log(f"{ort_path.name}: max |diff| vs {onnx_path.name} {check['max_abs_diff']:.1e} on "
                f"{check['samples']} inputs")
            result.models[ort_path.name] = {**check, "size_bytes": ort_path.stat().st_size,
                                            "onnx_size_bytes": onnx_path.stat().st_size, "variant": info.variant}
            staged.append((ort_path, info))
        config = Path(tmp) / f"{name}.required_operators.config"
        create_config_from_models([p for p, _ in staged], config, enable_type_reduction=False)
        lines = [line for line in config.read_text().splitlines() if not line.startswith("#")]
        header = ["# Operators the models below need: build onnxruntime with", "#   ./build.sh --minimal_build "
                  f"--include_ops_by_config {config.name} ...", *(f"# - {p.name}" for p, _ in staged)]
        config.write_text("\n".join(header + lines) + "\n")
        result.operators = [f"{d};{o}" for line in lines for d, _, ops in [line.split(";")] for o in ops.split(",")]
        meta = {**model_json(staged[0][1], staged[0][0].name), "models": sorted(result.models)}
        meta.pop("onnxruntime_web")
        (Path(tmp) / "model.json").write_text(json.dumps(meta, indent=1) + "\n")
        for path in [p for p, _ in staged] + [config, Path(tmp) / "model.json"]:
            path.replace(out_dir / path.name)
        result.config = str(out_dir / config.name)
    return result
