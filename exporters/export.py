"""Export a Keras classifier to validated ONNX variants: convert -> build -> validate -> write.

Each step is a function with typed inputs and outputs (the Optimum export / validate split):
`convert` (Keras -> fp32 graph, head detected, the Keras outputs as the reference), `builders.build_variants`
(the asked rows of `formats.FORMATS`), `validate.validate_variants` (each against the reference, int8 settled by
accuracy control and its fallback), `write.write_variants` (what passed, as one set). `run_export` runs them and
writes the report. The same build, validate and write steps serve `edgecls quantize` (onnx_int8.py), where the
reference is an fp32 .onnx file instead of the Keras model.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from ..runtime.atomic import write_json_atomic
from ..runtime.heads import output_width, to_scores
from ..runtime.inference import run_batches
from ..runtime.metadata import read_info
from ..runtime.session import create_session
from ..runtime.spec import InputSpec
from ..runtime.unsure import UnsureRule, calibrate
from .builders import BuildInputs, Candidate
from .convert import DEFAULT_OPSET, ModelInput, keras_to_onnx, model_input
from .errors import ExportError, GateError
from .evidence import int8_evidence
from .formats import VARIANT_FORMATS, build_variants, gate_of, int8_format
from .gates import Gates
from .heads import detect_head
from .quantize import QuantOptions
from .reference import KerasReference
from .speed import int8_speed_summary
from .validate import EvalData, Validator, validate_variants
from .write import ModelIdentity, Written, report_row, write_variants

Log = Callable[[str], None]


def report_path(out_dir: Path, name: str) -> Path:
    return Path(out_dir) / f"{name}.export.json"


@dataclass
class UnsureData:
    """Held-out in-distribution images (model-ready, never used to train or validate) that calibrate the unsure
    flag, and the share of them it flags: below 1% so that, with sampling error, unseen in-distribution data
    stays at or under 1% (MNIST test: 1.1% at a 1% target, 0.98% on held-out)."""

    pixels: np.ndarray
    description: str
    stats: Optional[dict[str, np.ndarray]] = None
    statistic: Optional[str] = None
    rate: float = 0.008


@dataclass
class ExportJob:
    model: Any  # keras.Model
    name: str
    labels: tuple[str, ...]
    out_dir: Path
    eval_data: EvalData
    calib_pixels: Optional[np.ndarray] = None  # uint8 (N,H,W,C), model-ready; required for static int8
    dataset: str = ""
    source_sha256: str = ""
    variants: tuple[str, ...] = ("fp32",)  # rows of formats.FORMATS; "int8" follows quant.mode
    quant: QuantOptions = field(default_factory=QuantOptions)
    gates: Gates = field(default_factory=Gates)
    opset: int = DEFAULT_OPSET
    nchw: bool = True
    head: Optional[str] = None  # output kind override (runtime.heads.OUTPUT_KINDS); None: detected
    image_size: Optional[tuple[int, int]] = None  # for models that take any image size
    measure_speed: bool = True  # time fp32 vs int8 on this machine for the report
    preprocess: tuple[dict[str, Any], ...] = ()  # declared, already applied to the eval/calibration pixels
    unsure: Optional[UnsureData] = None

    def formats(self) -> tuple[str, ...]:
        """The format rows to build: fp32 first, `int8` as the quantization mode asks."""
        unknown = [v for v in self.variants if v not in VARIANT_FORMATS]
        if unknown:
            raise ExportError(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANT_FORMATS)}")
        rows = [int8_format(self.quant.mode) if v == "int8" else v for v in self.variants if v != "fp32"]
        return ("fp32", *dict.fromkeys(rows))


@dataclass
class Converted:
    """The fp32 graph and what the rest of the run needs to know about it."""

    fp32: bytes
    spec: InputSpec  # the exported (ONNX) input spec
    adapter: ModelInput
    kind: str  # edgecls.output
    kind_reason: str
    reference: np.ndarray  # the user's model's raw outputs on the validation images
    rewrites: dict[str, Any]


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


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _reference_outputs(job: ExportJob, adapter: ModelInput, on_log: Log) -> np.ndarray:
    spec = adapter.spec
    if len(job.eval_data.x) == 0:
        raise ExportError("no validation images")
    if job.eval_data.x.shape[1:] != spec.shape:
        raise ExportError(f"validation images are {job.eval_data.x.shape[1:]}, the model takes {spec.shape}")
    on_log(f"Keras reference (the model's own outputs) on {job.eval_data.description}")
    try:
        return KerasReference(job.model, adapter).outputs(job.eval_data.x)
    except ExportError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's model failed on its own input
        raise ExportError(f"model {job.model.name!r} fails on {spec.height}x{spec.width}x{spec.channels} images: "
                          f"{type(exc).__name__}: {_first_line(exc)}") from None


def convert(job: ExportJob, on_log: Log) -> Converted:
    """Check the job, take the user's model outputs as the reference, detect its head, convert to ONNX."""
    job.formats()
    adapter = model_input(job.model, job.image_size)
    reference = _reference_outputs(job, adapter, on_log)
    kind, reason = detect_head(job.model, reference, job.head)
    width = output_width(kind, len(job.labels))
    if reference.shape[1] != width or (kind.startswith("binary") and len(job.labels) != 2):
        raise ExportError(f"model {job.name!r} has {reference.shape[1]} outputs ({kind} head) but {len(job.labels)} "
                          f"labels were given" + ("; a one-unit binary head needs two labels (negative, positive)"
                                                  if kind.startswith("binary") else ""))
    on_log(f"output: {kind} ({reason})")
    on_log("converting with tf2onnx")
    proto, onnx_spec, rewrites = keras_to_onnx(job.model, adapter.spec, opset=job.opset, nchw=job.nchw,
                                               adapter=adapter)
    return Converted(proto.SerializeToString(), onnx_spec, adapter, kind, reason, reference, rewrites)


def calibrate_unsure(unsure: Optional[UnsureData], fp32: bytes, spec: InputSpec, kind: str,
                     on_log: Log) -> Optional[UnsureRule]:
    """Thresholds for the unsure flag, from the exported model's answers on held-out images."""
    if unsure is None or len(unsure.pixels) == 0:
        return None
    on_log(f"calibrating the unsure flag on {unsure.description}")
    scores = to_scores(run_batches(create_session(fp32, "cpu"), unsure.pixels, spec), kind)
    return calibrate(scores, unsure.pixels, unsure.statistic, unsure.rate, unsure.description, unsure.stats)


def _measure(job: ExportJob, candidates: list[Candidate], inputs: BuildInputs, on_log: Log) -> Optional[dict]:
    """Report-only figures: fp32 vs int8 speed here, and the per-layer int8 evidence."""
    if not candidates[0].passed:
        return None
    try:
        explained = int8_evidence(candidates, inputs, job.measure_speed)
    except Exception as exc:  # noqa: BLE001 - report-only figures never stop an export
        on_log(f"int8 layer evidence unavailable: {type(exc).__name__}: {_first_line(exc)}")
        explained = None
    if explained is not None:
        candidate, evidence = explained
        candidate.extra["int8_layers"] = evidence
    int8 = next((c for c in candidates if c.gate == "int8" and c.ships), None)
    if int8 is None or not job.measure_speed:
        return None
    speed = int8_speed_summary(inputs.fp32, int8.data, inputs.spec, job.eval_data.x)
    candidates[0].extra["speed"], int8.extra["speed"] = speed["fp32"], speed["int8"]
    on_log(speed["verdict"])
    return speed


def run_export(job: ExportJob, on_log: Log = lambda m: None) -> dict[str, Any]:
    """Export, validate and write. Returns the report; raises GateError (report attached) if a gate fails."""
    conv = convert(job, on_log)
    inputs = BuildInputs(conv.fp32, conv.spec, job.calib_pixels, job.quant, on_log)
    unsure = calibrate_unsure(job.unsure, conv.fp32, conv.spec, conv.kind, on_log)
    validator = Validator(KerasReference(job.model, conv.adapter, conv.kind), job.eval_data, conv.spec, job.gates,
                          fp32=conv.fp32, calibration=job.calib_pixels, unsure=unsure, reference_raw=conv.reference)
    candidates = validate_variants(build_variants(job.formats(), inputs), validator, inputs)
    speed = _measure(job, candidates, inputs, on_log)
    identity = ModelIdentity(job.name, tuple(job.labels), conv.spec, conv.kind, job.dataset, job.source_sha256,
                             _versions(job.opset), tuple(job.preprocess), unsure.to_dict() if unsure else {})
    record = {"data": job.eval_data.description, "reference": "Keras", "gates": job.gates.to_dict()}
    written = write_variants(job.out_dir, identity, candidates, record)
    report = _report(job, conv, identity, written, speed)
    write_json_atomic(report_path(job.out_dir, job.name), report)
    raise_on_failure(job.name, report, written.written)
    return report


def _report(job: ExportJob, conv: Converted, identity: ModelIdentity, written: Written,
            speed: Optional[dict]) -> dict[str, Any]:
    return {
        "name": job.name, "dataset": job.dataset, "source_sha256": job.source_sha256,
        "reference": "Keras", "validation_data": job.eval_data.description, "input_spec": conv.spec.to_dict(),
        "model_input_layout": conv.adapter.layout, "output": conv.kind, "output_detected_from": conv.kind_reason,
        "graph_rewrites": conv.rewrites, "preprocess": list(job.preprocess), "unsure": identity.unsure or None,
        "gates": job.gates.to_dict(), "versions": identity.versions,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "variants": written.rows,
        "int8_speed": speed, "removed_stale": written.removed,
        "passed": all(r["passed"] for r in written.rows if not r.get("superseded")),
    }


def raise_on_failure(name: str, report: dict[str, Any], written: list[str]) -> None:
    """GateError (report attached) naming every variant that failed and what was written anyway."""
    failing = [r for r in report["variants"] if r["failures"] and not r.get("superseded")]
    if not failing:
        return
    lines = "; ".join(f"{r['variant']}: {', '.join(r['failures'])}" for r in failing)
    failed_fp32 = report["variants"][0]["variant"] == "fp32" and not report["variants"][0]["passed"]
    kept = "nothing written (fp32 failed)" if failed_fp32 else f"written: {', '.join(written) or 'nothing'}"
    raise GateError(f"{name}: validation gate failed: {lines}; {kept}", report)


def revalidate(onnx_path: Path, model: Any, eval_data: EvalData, gates: Gates = Gates()) -> dict[str, Any]:
    """Re-run validation of an exported file against its Keras model (read-only)."""
    info = read_info(onnx_path)
    reference = KerasReference(model, None, info.output)
    return validate_file(onnx_path, reference, eval_data, gates)


def validate_file(onnx_path: Path, reference: Any, eval_data: EvalData, gates: Gates = Gates()) -> dict[str, Any]:
    """Validate an exported file against a `Reference` (the Keras model, or its fp32 .onnx), read-only."""
    info = read_info(onnx_path)
    candidate = Candidate(info.variant, gate_of(info.variant), Path(onnx_path).read_bytes())
    checked = Validator(reference, eval_data, info.input_spec, gates)(candidate)
    row = report_row(checked, str(onnx_path))
    return {**row, "name": info.name, "reference": reference.name, "validation_data": eval_data.description}

