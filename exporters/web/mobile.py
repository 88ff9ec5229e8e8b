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

from ..errors import ExportError
from ...runtime.metadata import read_info
from ...runtime.variants import VARIANTS
from .bundle import model_json
from .ort_format import convert_checked, tolerance
from .operators import check_operators

@dataclass
class MobileExport:
    folder: Path
    models: dict[str, dict] = field(default_factory=dict)  # file name -> size, max diff, agreement
    config: str = ""
    operators: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {"folder": str(self.folder), "models": self.models, "required_operators": self.config,
                "operators": self.operators}


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
            ort_path = Path(tmp) / (onnx_path.name[: -len(".onnx")] + VARIANTS["ort"].suffix)
            limit = tolerance(info.variant)
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
