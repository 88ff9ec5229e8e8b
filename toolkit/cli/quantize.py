"""`edgecls quantize`: a gated int8 from an exported fp32 .onnx file, without its Keras source."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .export import GateOptions, print_variants
from .root import WorkspaceOption, JsonOption, OptPath, app, err_console, say


@app.command()
def quantize(
    model: Path = typer.Argument(..., help="An exported fp32 .onnx file (edgecls metadata inside)."),
    calib_data: Path = typer.Option(..., "--calib-data", help="Calibration images, folder/<class>/*."),
    eval_data: OptPath = typer.Option(None, "--eval-data", help="Labelled folder to validate on (default: the "
                                      "calibration folder's images not used to calibrate)."),
    out: OptPath = typer.Option(None, "--out", help="Output file (default: <model>.int8.onnx beside the input)."),
    quant: str = typer.Option("auto", "--quant", help="static | auto (accuracy control, then dynamic) | dynamic."),
    calib_size: int = typer.Option(512, "--calib-size", help="Calibration images, a stratified sample."),
    calib_method: str = typer.Option("minmax", "--calib-method", help="minmax | percentile | entropy."),
    max_int8_drop: float = GateOptions["max_int8_drop"],
    min_int8_agreement: float = GateOptions["min_int8_agreement"],
    max_int8_error: float = GateOptions["max_int8_error"],
    as_json: bool = JsonOption,
    workspace: OptPath = WorkspaceOption,
) -> None:
    """Quantize an fp32 .onnx to int8, validated against the fp32 file on labelled images held apart from
    calibration; written only if it passes the int8 gates (exit 1 and nothing written otherwise)."""
    from ..api import quantize as run
    from ..exporters.errors import GateError
    from ..exporters.gates import Gates
    from ..exporters.quantize import QuantOptions

    log = (lambda m: None) if as_json else (lambda m: say((m, "dim"), target=err_console))
    result = run(model, calib_data=calib_data, eval_data=eval_data, out=out,
                 quant=QuantOptions(mode=quant, calibration=calib_method, calib_size=calib_size),
                 gates=Gates(int8_max_accuracy_drop=max_int8_drop, int8_min_agreement=min_int8_agreement / 100,
                             int8_max_output_error=max_int8_error),
                 workspace=workspace, on_log=log, on_note=lambda note: say((note, "yellow"), target=err_console))
    if as_json:
        print(json.dumps(result.report, indent=2))
    else:
        print_variants(result.report["variants"], f"{result.report['name']}: int8 vs the fp32 ONNX file on "
                       f"{result.report['validation_data']}", reference="fp32")
    if not result.passed:
        raise GateError(result.failure)
    if not as_json:
        say(("wrote ", "green"), str(result.output))
