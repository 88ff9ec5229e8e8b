"""Export a Keras classifier to validated ONNX variants.

Order of events, so that nothing unvalidated ever sits under a final name:
convert -> build variants in memory -> run each on the validation images next to Keras ->
gate -> embed metadata (labels, input spec, validation) -> atomic write of the variants that passed.
If fp32 itself fails, nothing is written: the quantized variants derive from it.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from ..runtime.atomic import write_bytes_atomic, write_json_atomic
from ..runtime.inference import run_batches
from ..runtime.metadata import ModelInfo
from ..runtime.session import create_session
from ..runtime.spec import InputSpec
from ..runtime.unsure import UnsureRule, calibrate
from .convert import DEFAULT_OPSET, image_input_spec, keras_to_onnx
from .errors import ExportError, GateError
from .quantize import QuantOptions, quantize_dynamic_int8, quantize_static_int8, to_fp16
from .reference import keras_probabilities
from .validate import Gates, compare, gate_failures

VARIANTS = ("fp32", "int8", "fp16")
SUFFIX = {"fp32": ".onnx", "int8": ".int8.onnx", "fp16": ".fp16.onnx"}


def variant_path(out_dir: Path, name: str, variant: str) -> Path:
    return Path(out_dir) / f"{name}{SUFFIX[variant]}"


def remove_stale_variants(out_dir: Path, name: str, written: list[str]) -> list[str]:
    """Make the variants on disk one set: after fp32 is rewritten, any other variant file this run did not
    rebuild (an old .fp16.onnx when --fp16 was not asked again, an old int8 whose new one failed its gate)
    belongs to a different model and would be loaded beside the new one unmarked. Returns what was removed."""
    keep = {Path(p).resolve() for p in written}
    removed = []
    for variant in VARIANTS:
        path = variant_path(out_dir, name, variant)
        if path.resolve() not in keep and (path.is_file() or path.is_symlink()):
            path.unlink()
            removed.append(str(path))
    return removed


def report_path(out_dir: Path, name: str) -> Path:
    return Path(out_dir) / f"{name}.export.json"


@dataclass
class EvalData:
    """Images to validate on: uint8 (N,H,W,C) pixels, labels when known, and what they are."""

    x: np.ndarray
    y: Optional[np.ndarray]
    description: str
    stats: Optional[dict[str, np.ndarray]] = None  # measured by the declared preprocessing (unsure flag input)


@dataclass
class ExportJob:
    model: Any  # keras.Model
    name: str
    labels: tuple[str, ...]
    out_dir: Path
    eval_data: EvalData
    calib_pixels: Optional[np.ndarray] = None  # uint8 (N,H,W,C); required for static int8
    dataset: str = ""
    source_sha256: str = ""
    variants: tuple[str, ...] = ("fp32",)
    quant: QuantOptions = field(default_factory=QuantOptions)
    gates: Gates = field(default_factory=Gates)
    opset: int = DEFAULT_OPSET
    nchw: bool = True
    # Declared preprocessing (already applied to eval/calibration pixels) and the unsure flag's calibration:
    # held-out in-distribution pixels, model-ready, never used to train or to validate.
    preprocess: tuple[dict[str, Any], ...] = ()
    unsure_pixels: Optional[np.ndarray] = None
    unsure_stats: Optional[dict[str, np.ndarray]] = None
    unsure_statistic: Optional[str] = None
    unsure_description: str = ""
    # Flag this share of held-out in-distribution images: below 1% so that, with sampling error, unseen
    # in-distribution data stays at or under 1% (MNIST test: 1.1% at a 1% target, 0.98% on held-out).
    unsure_rate: float = 0.008


def _versions(opset: int) -> dict[str, Any]:
    import keras
    import onnx
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    from .. import __version__

    return {"edgecls": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "tf2onnx": tf2onnx.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
            "opset": opset, "python": platform.python_version()}


def _embed(model_bytes: bytes, info: ModelInfo) -> bytes:
    import onnx

    proto = onnx.load_from_string(model_bytes)
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, info.to_metadata())
    proto.producer_name = "edgecls"
    proto.doc_string = f"edgecls {info.name} ({info.variant}): image classifier, outputs probabilities over labels"
    return proto.SerializeToString()


def run_export(job: ExportJob, on_log: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """Export, validate and write. Returns the report; raises GateError (report attached) if a gate fails."""
    unknown = [v for v in job.variants if v not in VARIANTS]
    if unknown:
        raise ExportError(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    spec = image_input_spec(job.model)
    n_out = int(job.model.outputs[0].shape[-1])
    if n_out != len(job.labels):
        raise ExportError(f"model {job.name!r} has {n_out} outputs but {len(job.labels)} labels were given")
    if len(job.eval_data.x) == 0:
        raise ExportError("no validation images")
    if job.eval_data.x.shape[1:] != spec.shape:
        raise ExportError(f"validation images are {job.eval_data.x.shape[1:]}, the model takes {spec.shape}")

    on_log(f"Keras reference on {job.eval_data.description}")
    reference = keras_probabilities(job.model, job.eval_data.x)
    on_log("converting with tf2onnx")
    proto, onnx_spec, rewrites = keras_to_onnx(job.model, spec, opset=job.opset, nchw=job.nchw)
    fp32 = proto.SerializeToString()
    versions = _versions(job.opset)

    def validate(variant: str, gate_as: str, data: bytes, quantization: dict[str, Any]) -> dict[str, Any]:
        session = create_session(data, "cpu")
        probs = run_batches(session, job.eval_data.x, onnx_spec)
        result = compare(reference, probs, job.eval_data.y)
        result["unsure_rate"] = None if unsure_rule is None else \
            float(unsure_rule.flags(probs, job.eval_data.x, job.eval_data.stats).mean())
        failures = gate_failures(gate_as, result, job.gates)
        return {"variant": variant, "bytes": data, "quantization": quantization, "validation": result,
                "failures": failures, "size_bytes": len(data)}

    unsure_rule = _calibrate_unsure(job, fp32, onnx_spec, on_log)
    results = [validate("fp32", "fp32", fp32, {})]
    if "fp16" in job.variants:
        on_log("fp16 variant")
        results.append(validate("fp16", "fp16", to_fp16(fp32), {"method": "fp16", "keep_io_types": True}))
    if "int8" in job.variants:
        results.extend(_int8_candidates(job, fp32, onnx_spec, validate, on_log))

    failed_fp32 = bool(results[0]["failures"])
    written = []
    for r in results:
        r["passed"] = not r["failures"]
        slot = "int8" if r["variant"].startswith("int8") else r["variant"]
        r["path"] = str(variant_path(job.out_dir, job.name, slot))
        r["written"] = False
        if r["passed"] and not failed_fp32 and not r.get("superseded"):
            info = ModelInfo(
                name=job.name, variant=r["variant"], labels=tuple(job.labels), input_spec=onnx_spec,
                dataset=job.dataset, source_sha256=job.source_sha256, versions=versions,
                quantization=r["quantization"],
                validation={"data": job.eval_data.description, **r["validation"], "gates": job.gates.to_dict()},
                preprocess=tuple(job.preprocess), unsure=unsure_rule.to_dict() if unsure_rule else {},
            )
            final = _embed(r["bytes"], info)
            write_bytes_atomic(Path(r["path"]), final)
            r["size_bytes"] = len(final)
            r["written"] = True
            written.append(r["path"])
        del r["bytes"]
    removed = [] if failed_fp32 else remove_stale_variants(job.out_dir, job.name, written)

    report = {
        "name": job.name,
        "dataset": job.dataset,
        "source_sha256": job.source_sha256,
        "validation_data": job.eval_data.description,
        "input_spec": onnx_spec.to_dict(),
        "graph_rewrites": rewrites,
        "preprocess": list(job.preprocess),
        "unsure": unsure_rule.to_dict() if unsure_rule else None,
        "gates": job.gates.to_dict(),
        "versions": versions,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "variants": results,
        "removed_stale": removed,
        "passed": all(r["passed"] for r in results if not r.get("superseded")),
    }
    write_json_atomic(report_path(job.out_dir, job.name), report)
    failing = [r for r in results if r["failures"] and not r.get("superseded")]
    if failing:
        lines = "; ".join(f"{r['variant']}: {', '.join(r['failures'])}" for r in failing)
        kept = "nothing written (fp32 failed)" if failed_fp32 else f"written: {', '.join(written) or 'nothing'}"
        raise GateError(f"{job.name}: validation gate failed: {lines}; {kept}", report)
    return report


def _calibrate_unsure(job: ExportJob, fp32: bytes, onnx_spec: InputSpec, on_log) -> Optional[UnsureRule]:
    """Thresholds for the unsure flag, from the exported model's answers on held-out images."""
    if job.unsure_pixels is None or len(job.unsure_pixels) == 0:
        return None
    on_log(f"calibrating the unsure flag on {job.unsure_description}")
    probs = run_batches(create_session(fp32, "cpu"), job.unsure_pixels, onnx_spec)
    return calibrate(probs, job.unsure_pixels, job.unsure_statistic, job.unsure_rate, job.unsure_description,
                     job.unsure_stats)


def _int8_candidates(job: ExportJob, fp32: bytes, onnx_spec: InputSpec, validate, on_log) -> list[dict[str, Any]]:
    """Static int8 first (unless dynamic was asked for); in auto mode fall back to dynamic if static fails."""
    q = job.quant
    out = []
    if q.mode in ("static", "auto"):
        if job.calib_pixels is None or len(job.calib_pixels) == 0:
            raise ExportError("static int8 needs calibration images (--calib-data)")
        on_log(f"int8 static quantization, {q.calibration} calibration on {len(job.calib_pixels)} images")
        info = {"method": "static", "format": "QDQ", "per_channel": q.per_channel, "weights": "int8",
                "activations": "uint8", "float_stem": q.float_stem, "calibration": q.calibration, "calibration_images": int(len(job.calib_pixels))}
        static = validate("int8", "int8", quantize_static_int8(fp32, job.calib_pixels, onnx_spec, q), info)
        out.append(static)
        if not static["failures"] or q.mode == "static":
            return out
        on_log("static int8 failed its gate; trying dynamic int8")
    dynamic = validate("int8-dynamic", "int8", quantize_dynamic_int8(fp32),
                       {"method": "dynamic", "per_channel": True, "weights": "int8", "ops": ["MatMul", "Gemm"]})
    if out and not dynamic["failures"]:
        out[0]["superseded"] = True  # the static attempt stays in the report, the dynamic one ships
    out.append(dynamic)
    return out


def revalidate(onnx_path: Path, model: Any, eval_data: EvalData, gates: Gates = Gates()) -> dict[str, Any]:
    """Re-run validation of an exported file against its Keras model (read-only)."""
    session = create_session(onnx_path, "cpu")
    info = ModelInfo.from_metadata(session.get_modelmeta().custom_metadata_map, str(onnx_path))
    reference = keras_probabilities(model, eval_data.x)
    probs = run_batches(session, eval_data.x, info.input_spec)
    result = compare(reference, probs, eval_data.y)
    gate_as = "int8" if info.variant.startswith("int8") else info.variant
    failures = gate_failures(gate_as, result, gates)
    return {"variant": info.variant, "path": str(onnx_path), "size_bytes": Path(onnx_path).stat().st_size,
            "validation": result, "failures": failures, "passed": not failures, "name": info.name,
            "validation_data": eval_data.description}
