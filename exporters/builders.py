"""Build variants: each one a graph made in memory from the fp32 graph, on its way to validation.

One builder per variant format; the format table (`formats.FORMATS`) names them and `formats.build_variants`
runs the asked ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from ..runtime.spec import InputSpec
from .errors import ExportError
from .gates import GateFailure
from .quantize import QuantOptions, describe_stem, quantize_dynamic_int8, quantize_static, to_fp16


@dataclass
class Candidate:
    """A built variant in memory, on its way through validation to the disk."""

    variant: str  # a format name: fp32 | fp16 | int8 | int8-dynamic
    gate: str  # the gate family judging it: fp32 | fp16 | int8
    data: Optional[bytes]
    quantization: dict[str, Any] = field(default_factory=dict)
    kept_float: tuple[str, ...] = ()  # nodes the quantizer was asked to keep in float
    failures: list[GateFailure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    validation: dict[str, Any] = field(default_factory=dict)
    superseded: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def ships(self) -> bool:
        return self.passed and not self.superseded


@dataclass(frozen=True)
class BuildInputs:
    """What every builder may use: the fp32 graph, its input, the calibration images and the int8 options."""

    fp32: bytes
    spec: InputSpec  # the exported (ONNX) input spec
    calibration: Optional[np.ndarray] = None  # uint8 (N,H,W,C), model-ready; static int8 only
    quant: QuantOptions = QuantOptions()
    on_log: Callable[[str], None] = lambda message: None


def build_fp32(inputs: BuildInputs) -> Candidate:
    return Candidate("fp32", "fp32", inputs.fp32)


def build_fp16(inputs: BuildInputs) -> Candidate:
    inputs.on_log("fp16 variant")
    return Candidate("fp16", "fp16", to_fp16(inputs.fp32), {"method": "fp16", "keep_io_types": True})


def build_static_int8(inputs: BuildInputs, quant: Optional[QuantOptions] = None,
                      extra_float_nodes: tuple[str, ...] = ()) -> Candidate:
    """Static QDQ int8 (per-channel int8 weights, uint8 activations), calibrated on real images."""
    q = quant or inputs.quant
    pixels = inputs.calibration
    if pixels is None or len(pixels) == 0:
        raise ExportError("static int8 needs calibration images (--calib-data)")
    if not extra_float_nodes:
        inputs.on_log(f"int8 static quantization, {q.calibration} calibration on {len(pixels)} images")
    built = quantize_static(inputs.fp32, pixels, inputs.spec, q, extra_float_nodes)
    info = {"method": "static", "format": "QDQ", "per_channel": q.per_channel, "weights": "int8",
            "activations": "uint8", "float_stem": q.float_stem, "calibration": q.calibration,
            "calibration_images": int(len(pixels)), "stem": describe_stem(built.data)}
    return Candidate("int8", "int8", built.data, info, kept_float=built.kept_float)


def build_dynamic_int8(inputs: BuildInputs) -> Candidate:
    from .quantize import DYNAMIC_OPS

    return Candidate("int8-dynamic", "int8", quantize_dynamic_int8(inputs.fp32),
                     {"method": "dynamic", "per_channel": True, "weights": "int8", "ops": list(DYNAMIC_OPS)})
