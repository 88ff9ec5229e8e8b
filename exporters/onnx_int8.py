"""Gated int8 from an exported fp32 .onnx file alone (its Keras source gone or never at hand).

The reference is the fp32 file itself: the int8 candidate is built, accuracy-controlled and gated exactly as
`edgecls export --int8` does (same builders, validator, gates and fallback to dynamic int8), with the fp32
ONNX model's outputs in the place of the Keras model's. The result is written atomically to a new file.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..runtime.atomic import write_bytes_atomic
from ..runtime.inference import run_batches
from ..runtime.metadata import read_info
from ..runtime.session import create_session
from .errors import ExportError, GateError
from .export import Candidate, Converted, EvalData, ExportJob, _build_int8, _embed, check_file, validate_variants
from .quantize import QuantOptions
from .validate import Gates


def quantize_onnx(src: Path, out: Path, calib_pixels: np.ndarray, eval_data: EvalData, quant: QuantOptions,
                  gates: Gates, on_log: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """Write a gated int8 of the fp32 file `src` to `out`; returns the report row. Raises GateError (report
    attached) when no int8 passes, and writes nothing then. Pixels are model-ready uint8 (N,H,W,C)."""
    info = read_info(src)
    if info.variant != "fp32":
        raise ExportError(f"{src}: is already a {info.variant} model; quantize its fp32 file")
    if out.resolve() == src.resolve():
        raise ExportError(f"{out}: is the input model; the int8 file must go to a new path")
    fp32 = src.read_bytes()
    on_log(f"fp32 reference (the ONNX file's own outputs) on {eval_data.description}")
    reference = run_batches(create_session(fp32, "cpu"), eval_data.x, info.input_spec)
    conv = Converted(fp32, info.input_spec, None, info.output, "model metadata", reference, {})  # type: ignore[arg-type]
    job = ExportJob(model=None, name=info.name, labels=info.labels, out_dir=out.parent, eval_data=eval_data,
                    calib_pixels=calib_pixels, dataset=info.dataset, source_sha256=info.source_sha256,
                    variants=("fp32", "int8"), quant=quant, gates=gates, preprocess=tuple(info.preprocess or ()),
                    measure_speed=False)
    candidates = validate_variants(job, conv, [Candidate("fp32", fp32), *_build_int8(job, conv, on_log)], None,
                                   on_log)[1:]
    final = next((c for c in candidates if not c.failures and not c.superseded), None)
    rows = [{"variant": c.variant, "quantization": c.quantization, "validation": c.validation,
             "failures": [str(f) for f in c.failures], "passed": not c.failures, "superseded": c.superseded,
             "size_bytes": len(c.data) if c.data else 0, "path": str(out), "written": c is final}
            for c in candidates]
    report = {"name": info.name, "source": src.name, "reference": "the fp32 ONNX file (no Keras source)",
              "validation_data": eval_data.description, "gates": gates.to_dict(),
              "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "variants": rows,
              "passed": final is not None}
    if final is None:
        last = [r for r in rows if not r["superseded"]] or rows
        raise GateError(f"{src}: no int8 passed its gate: {'; '.join(f for r in last for f in r['failures'])}; "
                        "nothing written", report)
    meta = dataclasses.replace(info, variant=final.variant, quantization=final.quantization,
                               validation={"data": eval_data.description, "reference": "fp32 ONNX",
                                           **final.validation, "gates": gates.to_dict()})
    data = _embed(final.data, meta)
    check_file(data)
    write_bytes_atomic(out, data)
    on_log(f"wrote {out}")
    return report
