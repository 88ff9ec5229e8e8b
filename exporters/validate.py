"""Validate a candidate against its reference (the Optimum `validate_model_outputs` step) and apply its gates.

The reference is anything that answers like the model (`reference.Reference`: the Keras model or an fp32 .onnx);
its outputs on the validation images are computed once. Every candidate is checked the same way: onnx.checker
full_check, run on the images (int8: those that did not calibrate it), measured (`gates.compare`), judged
(`gates.judge`) and, for int8, sized (`size.judge_size`). The result is written into the candidate.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..runtime.heads import DEFAULT_THRESHOLD, MULTILABEL, to_scores
from ..runtime.inference import run_batches
from ..runtime.session import create_session
from ..runtime.spec import InputSpec
from ..runtime.unsure import UnsureRule
from .builders import BuildInputs, Candidate
from .formats import FORMATS
from .gates import ERROR_QUANTILE, GateFailure, Gates, compare, judge
from .reference import Reference
from .size import check_size, judge_size


@dataclass
class EvalData:
    """Images to validate on: uint8 (N,H,W,C) pixels, labels when known, and what they are."""

    x: np.ndarray
    y: Optional[np.ndarray]
    description: str
    stats: Optional[dict[str, np.ndarray]] = None  # measured by the declared preprocessing (unsure flag input)


def check_file(data: bytes) -> None:
    """Every written variant must pass the ONNX checker with full_check (shape and type inference too)."""
    import onnx

    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)


def _digest_rows(pixels: np.ndarray) -> list[bytes]:
    return [hashlib.blake2b(np.ascontiguousarray(row).tobytes(), digest_size=16).digest() for row in pixels]


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class Validator:
    """Runs candidates on the validation images and applies their gates against one reference."""

    def __init__(self, reference: Reference, data: EvalData, spec: InputSpec, gates: Gates = Gates(), *,
                 fp32: Optional[bytes] = None, calibration: Optional[np.ndarray] = None,
                 unsure: Optional[UnsureRule] = None, reference_raw: Optional[np.ndarray] = None) -> None:
        """spec: the exported input; fp32: the graph int8 sizes are judged against; calibration: the images
        int8 was calibrated on (never scored); reference_raw: the reference's outputs on data.x, if known."""
        self.reference, self.data, self.spec, self.gates = reference, data, spec, gates
        self.fp32, self.unsure = fp32, unsure
        self.raw = reference.outputs(data.x) if reference_raw is None else reference_raw
        self.scores = to_scores(self.raw, reference.kind)
        self.not_calibration = np.ones(len(data.x), bool)
        if calibration is not None and len(calibration):
            seen = set(_digest_rows(calibration))
            self.not_calibration = np.array([d not in seen for d in _digest_rows(data.x)], bool)

    def __call__(self, c: Candidate) -> Candidate:
        if c.data is None:
            return c
        try:
            check_file(c.data)
        except Exception as exc:  # noqa: BLE001 - the checker raises its own error types
            c.failures.append(GateFailure("onnx_check", f"fails onnx.checker full_check: {_first_line(exc)}"))
            return c
        rows = self.not_calibration if c.gate == "int8" else np.ones(len(self.data.x), bool)
        if not rows.any():
            c.failures.append(GateFailure("disjoint_data", "no validation images apart from the calibration images; "
                                                           "give --eval-data"))
            return c
        try:
            raw = run_batches(create_session(c.data, "cpu"), self.data.x[rows], self.spec)
        except Exception as exc:  # noqa: BLE001 - a built graph onnxruntime cannot run
            c.failures.append(GateFailure("runtime", f"onnxruntime cannot run it: {_first_line(exc)}"))
            return c
        c.validation = self.measure(c.gate, raw, rows)
        verdict = judge(c.gate, c.validation, self.gates)
        c.failures.extend(verdict.failures)
        c.notes.extend(verdict.notes)
        if c.gate == "int8" and self.fp32 is not None:
            self._judge_size(c)
        return c

    def measure(self, gate: str, raw: np.ndarray, rows: np.ndarray) -> dict[str, Any]:
        """The candidate's raw outputs on `rows` of the images, compared with the reference's."""
        data, kind = self.data, self.reference.kind
        scores = to_scores(raw, kind)
        reference = self.scores[rows]
        result = compare(reference, scores, None if data.y is None else data.y[rows], ERROR_QUANTILE[gate])
        result["max_abs_diff_raw"] = float(np.abs(raw.astype(np.float64) - self.raw[rows]).max()) if raw.size else 0.0
        if kind in MULTILABEL:
            same = ((scores >= DEFAULT_THRESHOLD) == (reference >= DEFAULT_THRESHOLD)).all(axis=1)
            result["label_set_agreement"] = float(same.mean())
        if gate == "int8":
            result["disjoint_from_calibration"] = True
            result["calibration_overlap_excluded"] = int((~rows).sum())
        stats = None if data.stats is None else {k: v[rows] for k, v in data.stats.items()}
        result["unsure_rate"] = None if self.unsure is None else \
            float(self.unsure.flags(scores, data.x[rows], stats).mean())
        return result

    def _judge_size(self, c: Candidate) -> None:
        ops = FORMATS[c.variant].quantizes
        check = check_size(self.fp32, c.data, ops, c.kept_float)
        c.extra["size_check"] = check.to_dict()
        failure, note = judge_size(check, self.gates.int8_min_size_saving, ops)
        if failure is not None:
            c.failures.append(failure)
        if note is not None:
            c.notes.append(note)


def validate_variants(candidates: list[Candidate], validator: Validator, inputs: BuildInputs) -> list[Candidate]:
    """Validate every built variant; in auto mode a failed static int8 is settled by accuracy control and its
    format's fallback (int8_control.settle_int8). `inputs`: what they were built from."""
    from .int8_control import settle_int8

    return settle_int8([validator(c) for c in candidates], inputs, validator)
