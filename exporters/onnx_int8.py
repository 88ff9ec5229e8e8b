"""Gated int8 from an exported fp32 .onnx file alone (its Keras source gone or never at hand).

The same steps as `edgecls export --int8` (build, validate with accuracy control and fallback, write), with an
`OnnxReference` (the fp32 file's own outputs) where export has the Keras model. The result is written
atomically to a new file; the input is never touched.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..runtime.metadata import read_info
from .builders import BuildInputs
from .errors import ExportError, GateError
from .formats import build_variants, int8_format
from .gates import Gates
from .quantize import QuantOptions
from .reference import OnnxReference
from .validate import EvalData, Validator, validate_variants
from .write import ModelIdentity, report_row, write_candidate


def quantize_onnx(src: Path, out: Path, calib_pixels: np.ndarray, eval_data: EvalData, quant: QuantOptions,
                  gates: Gates, on_log: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """Write a gated int8 of the fp32 file `src` to `out`; returns the report. Raises GateError (report
    attached) when no int8 passes, and writes nothing then. Pixels are model-ready uint8 (N,H,W,C)."""
    info = read_info(src)
    if info.variant != "fp32":
        raise ExportError(f"{src}: is already a {info.variant} model; quantize its fp32 file")
    if Path(out).resolve() == Path(src).resolve():
        raise ExportError(f"{out}: is the input model; the int8 file must go to a new path")
    reference = OnnxReference.from_file(src)
    on_log(f"fp32 reference (the ONNX file's own outputs) on {eval_data.description}")
    inputs = BuildInputs(reference.data, info.input_spec, calib_pixels, quant, on_log)
    validator = Validator(reference, eval_data, info.input_spec, gates, fp32=reference.data, calibration=calib_pixels)
    candidates = validate_variants(build_variants((int8_format(quant.mode),), inputs), validator, inputs)
    final = next((c for c in candidates if c.ships), None)
    rows = [{**report_row(c, str(out)), "superseded": c.superseded, "written": c is final} for c in candidates]
    report = {"name": info.name, "source": Path(src).name, "reference": "the fp32 ONNX file (no Keras source)",
              "validation_data": eval_data.description, "gates": gates.to_dict(),
              "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "variants": rows,
              "passed": final is not None}
    if final is None:
        last = [r for r in rows if not r["superseded"]] or rows
        raise GateError(f"{src}: no int8 passed its gate: {'; '.join(f for r in last for f in r['failures'])}; "
                        "nothing written", report)
    identity = ModelIdentity(info.name, info.labels, info.input_spec, info.output, info.dataset, info.source_sha256,
                             info.versions, tuple(info.preprocess or ()), info.unsure)
    record = {"data": eval_data.description, "reference": "fp32 ONNX", "gates": gates.to_dict()}
    write_candidate(Path(out), identity, final, record)
    on_log(f"wrote {out}")
    return report
