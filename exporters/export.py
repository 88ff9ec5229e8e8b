"""Export a Keras classifier to validated ONNX variants.

Order of events, so that nothing unvalidated ever sits under a final name:
convert -> build variants in memory (one table, `VARIANT_TABLE`) -> validate each against the user's own
model outputs on the validation images -> gate -> embed metadata -> write the variants that passed as
one set (a variant not rebuilt is removed). If fp32 itself fails, nothing is written: the others derive
from it. A variant that cannot be built (fp16/int8 conversion error) is reported and never blocks fp32.
"""

from __future__ import annotations

import hashlib
import platform
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from ..runtime.atomic import write_bytes_atomic, write_json_atomic
from ..runtime.heads import DEFAULT_THRESHOLD, MULTILABEL, output_width, to_scores
from ..runtime.inference import run_batches
from ..runtime.metadata import ModelInfo, read_info
from ..runtime.variants import VARIANTS as RUNTIME_VARIANTS, variant_file
from ..runtime.session import create_session
from ..runtime.spec import InputSpec
from ..runtime.unsure import UnsureRule, calibrate
from .convert import DEFAULT_OPSET, ModelInput, keras_to_onnx, model_input
from .errors import ExportError, GateError
from .heads import detect_head
from .quantize import QuantOptions, describe_stem, quantize_dynamic_int8, quantize_static_int8, to_fp16
from .reference import keras_outputs, keras_probabilities
from .validate import GateFailure, Gates, check_gates, compare, gate_failures


@dataclass(frozen=True)
class Variant:
    """One kind of exported file: its name and the gate it must pass (file names: the runtime's variant table;
    builders: `_BUILDERS`)."""

    name: str
    gate: str

    @property
    def suffix(self) -> str:
        return RUNTIME_VARIANTS[self.name].suffix


VARIANT_TABLE: dict[str, Variant] = {
    "fp32": Variant("fp32", "fp32"),
    "int8": Variant("int8", "int8"),
    "fp16": Variant("fp16", "fp16"),
}
VARIANTS = tuple(VARIANT_TABLE)


def variant_path(out_dir: Path, name: str, variant: str) -> Path:
    return variant_file(out_dir, name, variant)


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
    head: Optional[str] = None  # output kind override (runtime.heads.OUTPUT_KINDS); None: detected
    image_size: Optional[tuple[int, int]] = None  # for models that take any image size
    measure_speed: bool = True  # time fp32 vs int8 on this machine for the report
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
    proto.doc_string = f"edgecls {info.name} ({info.variant}): image classifier, output: {info.output}"
    return proto.SerializeToString()


def check_file(data: bytes) -> None:
    """Every written variant must pass the ONNX checker with full_check (shape and type inference too)."""
    import onnx

    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)


@dataclass
class Candidate:
    """A built variant in memory, on its way through validation to the disk."""

    variant: str  # fp32 | fp16 | int8 | int8-dynamic
    data: Optional[bytes]
    quantization: dict[str, Any] = field(default_factory=dict)
    failures: list[GateFailure] = field(default_factory=list)
    validation: dict[str, Any] = field(default_factory=dict)
    superseded: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def gate(self) -> str:
        return VARIANT_TABLE["int8" if self.variant.startswith("int8") else self.variant].gate


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


def _digest_rows(pixels: np.ndarray) -> list[bytes]:
    return [hashlib.blake2b(np.ascontiguousarray(row).tobytes(), digest_size=16).digest() for row in pixels]


def convert(job: ExportJob, on_log: Callable[[str], None]) -> Converted:
    """Check the job, take the user's model outputs as the reference, detect its head, convert to ONNX."""
    unknown = [v for v in job.variants if v not in VARIANT_TABLE]
    if unknown:
        raise ExportError(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    adapter = model_input(job.model, job.image_size)
    spec = adapter.spec
    if len(job.eval_data.x) == 0:
        raise ExportError("no validation images")
    if job.eval_data.x.shape[1:] != spec.shape:
        raise ExportError(f"validation images are {job.eval_data.x.shape[1:]}, the model takes {spec.shape}")
    on_log(f"Keras reference (the model's own outputs) on {job.eval_data.description}")
    try:
        reference = keras_outputs(job.model, job.eval_data.x, adapter)
    except ExportError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's model failed on its own input
        raise ExportError(f"model {job.model.name!r} fails on {spec.height}x{spec.width}x{spec.channels} images: "
                          f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from None
    kind, reason = detect_head(job.model, reference, job.head)
    width = output_width(kind, len(job.labels))
    if reference.shape[1] != width or (kind.startswith("binary") and len(job.labels) != 2):
        raise ExportError(f"model {job.name!r} has {reference.shape[1]} outputs ({kind} head) but {len(job.labels)} "
                          f"labels were given" + ("; a one-unit binary head needs two labels (negative, positive)"
                                                  if kind.startswith("binary") else ""))
    on_log(f"output: {kind} ({reason})")
    on_log("converting with tf2onnx")
    proto, onnx_spec, rewrites = keras_to_onnx(job.model, spec, opset=job.opset, nchw=job.nchw, adapter=adapter)
    return Converted(proto.SerializeToString(), onnx_spec, adapter, kind, reason, reference, rewrites)


def _build_fp16(job: ExportJob, conv: Converted, on_log) -> list[Candidate]:
    on_log("fp16 variant")
    return [Candidate("fp16", to_fp16(conv.fp32), {"method": "fp16", "keep_io_types": True})]


def _build_int8(job: ExportJob, conv: Converted, on_log) -> list[Candidate]:
    """Static QDQ first (unless dynamic was asked for); `_validate_int8` falls back to dynamic in auto mode."""
    q = job.quant
    if q.mode == "dynamic":
        return [_dynamic(conv)]
    if job.calib_pixels is None or len(job.calib_pixels) == 0:
        raise ExportError("static int8 needs calibration images (--calib-data)")
    on_log(f"int8 static quantization, {q.calibration} calibration on {len(job.calib_pixels)} images")
    info = {"method": "static", "format": "QDQ", "per_channel": q.per_channel, "weights": "int8",
            "activations": "uint8", "float_stem": q.float_stem, "calibration": q.calibration,
            "calibration_images": int(len(job.calib_pixels))}
    blob = quantize_static_int8(conv.fp32, job.calib_pixels, conv.spec, q)
    return [Candidate("int8", blob, {**info, "stem": describe_stem(blob)})]


def _dynamic(conv: Converted) -> Candidate:
    return Candidate("int8-dynamic", quantize_dynamic_int8(conv.fp32),
                     {"method": "dynamic", "per_channel": True, "weights": "int8", "ops": ["MatMul", "Gemm"]})


_BUILDERS: dict[str, Callable[..., list[Candidate]]] = {"fp16": _build_fp16, "int8": _build_int8}


def build_variants(job: ExportJob, conv: Converted, on_log) -> list[Candidate]:
    """fp32 plus every asked variant; one that cannot be built becomes a failed candidate, never an exception."""
    out = [Candidate("fp32", conv.fp32)]
    for name in job.variants:
        if name == "fp32":
            continue
        try:
            out.extend(_BUILDERS[name](job, conv, on_log))
        except ExportError:
            raise
        except Exception as exc:  # noqa: BLE001 - converter/quantizer internals raise anything
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            out.append(Candidate(name, None, failures=[GateFailure("build", f"could not be built: {type(exc).__name__}: {text}")]))
    return out


class _Validator:
    """Runs a candidate on the validation images and applies its gates."""

    def __init__(self, job: ExportJob, conv: Converted, unsure_rule: Optional[UnsureRule]) -> None:
        self.job, self.conv, self.rule = job, conv, unsure_rule
        self.ref_scores = to_scores(conv.reference, conv.kind)
        self.fp32_size = len(conv.fp32)
        self.not_calibration = np.ones(len(job.eval_data.x), bool)
        if job.calib_pixels is not None and len(job.calib_pixels):
            calib = set(_digest_rows(job.calib_pixels))
            self.not_calibration = np.array([d not in calib for d in _digest_rows(job.eval_data.x)], bool)

    def __call__(self, c: Candidate) -> Candidate:
        if c.data is None:
            return c
        try:
            check_file(c.data)
        except Exception as exc:  # noqa: BLE001
            c.failures.append(GateFailure("onnx_check", f"fails onnx.checker full_check: {str(exc).splitlines()[0]}"))
            return c
        job, data = self.job, self.job.eval_data
        rows = self.not_calibration if c.gate == "int8" else np.ones(len(data.x), bool)
        if not rows.any():
            c.failures.append(GateFailure("disjoint_data", "no validation images apart from the calibration images; "
                                                           "give --eval-data"))
            return c
        try:
            raw = run_batches(create_session(c.data, "cpu"), data.x[rows], self.conv.spec)
        except Exception as exc:  # noqa: BLE001 - a built graph onnxruntime cannot run
            c.failures.append(GateFailure("runtime", f"onnxruntime cannot run it: {str(exc).splitlines()[0]}"))
            return c
        scores = to_scores(raw, self.conv.kind)
        result = compare(self.ref_scores[rows], scores, None if data.y is None else data.y[rows])
        result["max_abs_diff_raw"] = float(np.abs(raw.astype(np.float64) - self.conv.reference[rows]).max())
        if self.conv.kind in MULTILABEL:
            same = ((scores >= DEFAULT_THRESHOLD) == (self.ref_scores[rows] >= DEFAULT_THRESHOLD)).all(axis=1)
            result["label_set_agreement"] = float(same.mean())
        if c.gate == "int8":
            result["disjoint_from_calibration"] = True
            result["calibration_overlap_excluded"] = int((~rows).sum())
        stats = None if data.stats is None else {k: v[rows] for k, v in data.stats.items()}
        result["unsure_rate"] = None if self.rule is None else \
            float(self.rule.flags(scores, data.x[rows], stats).mean())
        c.validation = result
        c.failures.extend(check_gates(c.gate, result, job.gates))
        if c.gate == "int8" and len(c.data) > job.gates.int8_max_size_ratio * self.fp32_size:
            c.failures.append(GateFailure(
                "size", f"size {len(c.data) / self.fp32_size:.0%} of fp32 > {job.gates.int8_max_size_ratio:.0%} "
                        "(an int8 file that does not shrink is not shipped)",
                len(c.data) / self.fp32_size, job.gates.int8_max_size_ratio))
        return c


def validate_variants(job: ExportJob, conv: Converted, built: list[Candidate], unsure_rule, on_log) -> list[Candidate]:
    """Validate every built variant. In auto mode a static int8 that misses its gates goes through accuracy
    control (other calibrations, then the most sensitive nodes kept in float); dynamic int8 is the last resort."""
    check = _Validator(job, conv, unsure_rule)
    out = [check(c) for c in built]
    static = next((c for c in out if c.variant == "int8"), None)
    if static is None or not static.failures or job.quant.mode != "auto" or static.data is None:
        return out
    if job.calib_pixels is not None and not any(f.gate in ("size", "disjoint_data") for f in static.failures):
        from .int8_control import accuracy_controlled_int8

        make = lambda data, quantization: check(Candidate("int8", data, quantization))  # noqa: E731
        try:
            controlled = accuracy_controlled_int8(static, conv.fp32, job.calib_pixels, conv.spec, job.quant, make, on_log)
        except Exception as exc:  # noqa: BLE001 - a search step failed: keep the plain static result
            on_log(f"int8 accuracy control stopped: {type(exc).__name__}: {exc}")
            controlled = static
        if controlled is not static:
            static.superseded = True  # the plain attempt stays in the report
            out.insert(out.index(static) + 1, controlled)
            static = controlled
        if not controlled.failures:
            return out
    on_log("static int8 failed its gate; trying dynamic int8")
    try:
        dynamic = check(_dynamic(conv))
    except Exception as exc:  # noqa: BLE001
        dynamic = Candidate("int8-dynamic", None, failures=[GateFailure("build", f"could not be built: {exc}")])
    if not dynamic.failures:
        static.superseded = True
    out.insert(out.index(static) + 1, dynamic)
    return out


def measure_speed(data: bytes, spec: InputSpec, pixels: np.ndarray, budget_s: float = 1.0) -> dict[str, float]:
    """Latency (batch 1, median ms) and throughput (batch 32, images/s) on this machine."""
    session = create_session(data, "cpu")
    name = session.get_inputs()[0].name
    from ..runtime.preprocess import to_batch

    one = to_batch(pixels[:1], spec)
    many = to_batch(np.resize(pixels, (32, *pixels.shape[1:])), spec)
    session.run(None, {name: one})
    session.run(None, {name: many})
    times, end = [], time.perf_counter() + budget_s / 2
    while len(times) < 5 or (time.perf_counter() < end and len(times) < 200):
        t = time.perf_counter()
        session.run(None, {name: one})
        times.append(time.perf_counter() - t)
    batches, t0, end = 0, time.perf_counter(), time.perf_counter() + budget_s / 2
    while batches < 2 or time.perf_counter() < end:
        session.run(None, {name: many})
        batches += 1
    return {"latency_ms": float(np.median(times) * 1e3), "throughput_ips": float(32 * batches / (time.perf_counter() - t0))}


def _speed_summary(candidates: list[Candidate], job: ExportJob, conv: Converted) -> Optional[dict[str, Any]]:
    fp32 = candidates[0]
    int8 = next((c for c in candidates if c.gate == "int8" and not c.failures and not c.superseded), None)
    if int8 is None or not job.measure_speed:
        return None
    a = measure_speed(fp32.data, conv.spec, job.eval_data.x)
    b = measure_speed(int8.data, conv.spec, job.eval_data.x)
    fp32.extra["speed"], int8.extra["speed"] = a, b
    speedup = a["latency_ms"] / b["latency_ms"]
    gain = b["throughput_ips"] / a["throughput_ips"]
    smaller = len(fp32.data) / len(int8.data)
    verdict = (f"int8 is {speedup:.2f}x the fp32 speed at batch 1 and {gain:.2f}x in throughput on this machine; "
               f"{smaller:.1f}x smaller")
    if speedup < 1.05 and gain < 1.05:
        verdict += " -- int8 is NOT faster here: ship it for size only"
    return {"fp32": a, "int8": b, "latency_speedup": speedup, "throughput_gain": gain, "size_ratio": smaller,
            "verdict": verdict, "measured": "on the exporting machine (may be under load)"}


def write_variants(job: ExportJob, conv: Converted, candidates: list[Candidate], unsure_rule,
                   versions: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Write what passed as one set (nothing if fp32 failed); returns (report rows, written, removed)."""
    failed_fp32 = bool(candidates[0].failures)
    rows, written = [], []
    for c in candidates:
        row = {"variant": c.variant, "quantization": c.quantization, "validation": c.validation,
               "failures": [str(f) for f in c.failures], "failure_types": [f.to_dict() for f in c.failures],
               "size_bytes": len(c.data) if c.data else 0, "passed": not c.failures,
               # relative to the report (which sits beside the models): no machine's absolute paths in reports
               "path": variant_path(job.out_dir, job.name, c.variant).name, "written": False, **c.extra}
        if c.superseded:
            row["superseded"] = True
        if row["passed"] and not failed_fp32 and not c.superseded:
            info = ModelInfo(
                name=job.name, variant=c.variant, labels=tuple(job.labels), input_spec=conv.spec, output=conv.kind,
                dataset=job.dataset, source_sha256=job.source_sha256, versions=versions, quantization=c.quantization,
                validation={"data": job.eval_data.description, **c.validation, "gates": job.gates.to_dict()},
                preprocess=tuple(job.preprocess), unsure=unsure_rule.to_dict() if unsure_rule else {},
            )
            final = _embed(c.data, info)
            target = variant_path(job.out_dir, job.name, c.variant)
            write_bytes_atomic(target, final)
            row["size_bytes"], row["written"] = len(final), True
            written.append(str(target))
        rows.append(row)
    removed = [] if failed_fp32 else [Path(p).name for p in remove_stale_variants(job.out_dir, job.name, written)]
    return rows, written, removed


def run_export(job: ExportJob, on_log: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """Export, validate and write. Returns the report; raises GateError (report attached) if a gate fails."""
    conv = convert(job, on_log)
    versions = _versions(job.opset)
    unsure_rule = _calibrate_unsure(job, conv.fp32, conv.spec, on_log, conv.kind)
    built = build_variants(job, conv, on_log)
    candidates = validate_variants(job, conv, built, unsure_rule, on_log)
    speed = _speed_summary(candidates, job, conv) if not candidates[0].failures else None
    if speed:
        on_log(speed["verdict"])
    rows, written, removed = write_variants(job, conv, candidates, unsure_rule, versions)
    failed_fp32 = bool(candidates[0].failures)
    report = {
        "name": job.name,
        "dataset": job.dataset,
        "source_sha256": job.source_sha256,
        "validation_data": job.eval_data.description,
        "input_spec": conv.spec.to_dict(),
        "model_input_layout": conv.adapter.layout,
        "output": conv.kind,
        "output_detected_from": conv.kind_reason,
        "graph_rewrites": conv.rewrites,
        "preprocess": list(job.preprocess),
        "unsure": unsure_rule.to_dict() if unsure_rule else None,
        "gates": job.gates.to_dict(),
        "versions": versions,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "variants": rows,
        "int8_speed": speed,
        "removed_stale": removed,
        "passed": all(r["passed"] for r in rows if not r.get("superseded")),
    }
    write_json_atomic(report_path(job.out_dir, job.name), report)
    failing = [r for r in rows if r["failures"] and not r.get("superseded")]
    if failing:
        lines = "; ".join(f"{r['variant']}: {', '.join(r['failures'])}" for r in failing)
        kept = "nothing written (fp32 failed)" if failed_fp32 else f"written: {', '.join(written) or 'nothing'}"
        raise GateError(f"{job.name}: validation gate failed: {lines}; {kept}", report)
    return report


def _calibrate_unsure(job: ExportJob, fp32: bytes, onnx_spec: InputSpec, on_log,
                      kind: str = "probabilities") -> Optional[UnsureRule]:
    """Thresholds for the unsure flag, from the exported model's answers on held-out images."""
    if job.unsure_pixels is None or len(job.unsure_pixels) == 0:
        return None
    on_log(f"calibrating the unsure flag on {job.unsure_description}")
    probs = to_scores(run_batches(create_session(fp32, "cpu"), job.unsure_pixels, onnx_spec), kind)
    return calibrate(probs, job.unsure_pixels, job.unsure_statistic, job.unsure_rate, job.unsure_description,
                     job.unsure_stats)


def revalidate(onnx_path: Path, model: Any, eval_data: EvalData, gates: Gates = Gates()) -> dict[str, Any]:
    """Re-run validation of an exported file against its Keras model (read-only)."""
    session = create_session(onnx_path, "cpu")
    info = read_info(onnx_path)
    reference = keras_probabilities(model, eval_data.x, info.output)
    probs = to_scores(run_batches(session, eval_data.x, info.input_spec), info.output)
    result = compare(reference, probs, eval_data.y)
    gate_as = "int8" if info.variant.startswith("int8") else info.variant
    failures = gate_failures(gate_as, result, gates)
    return {"variant": info.variant, "path": str(onnx_path), "size_bytes": Path(onnx_path).stat().st_size,
            "validation": result, "failures": failures, "passed": not failures, "name": info.name,
            "validation_data": eval_data.description}
