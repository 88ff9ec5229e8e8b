"""`edgecls quantize`: a gated int8 from an exported fp32 .onnx file, without its Keras source."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .root import WorkspaceOption, JsonOption, OptPath, app, err_console, say
from .export import GateOptions, print_variants


def default_output(model: Path, name: str, workspace: OptPath) -> Path:
    """The int8 file of the input's model: beside the input, or in the workspace when the input is shipped."""
    from ..runtime.store import ModelFolder, locate

    ref = locate(model)
    folder = ref.folder if not ref.folder.shipped else ModelFolder(name or ref.name, ref.folder.output_dir(workspace))
    return ModelFolder(ref.name, folder.directory).variant_path("int8")


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
    as_json: bool = JsonOption,
    workspace: OptPath = WorkspaceOption,
) -> None:
    """Quantize an fp32 .onnx to int8, validated against the fp32 file on labelled images held apart from
    calibration; written only if it passes the int8 gates (exit 1 and nothing written otherwise)."""
    from ..exporters.errors import ExportError, GateError
    from ..exporters.onnx_int8 import quantize_onnx
    from ..exporters.quantize import QuantOptions
    from ..exporters.validate import Gates
    from ..exporting import export_data
    from ..runtime.metadata import read_info
    from ..runtime.spec import InputSpec
    from ..runtime.transforms import Pipeline

    if model.suffix != ".onnx":
        raise ExportError(f"{model}: expected an exported .onnx file")
    if not model.is_file():
        raise ExportError(f"{model}: no such model file")
    info = read_info(model)
    target = Path(out) if out else default_output(model, info.name, workspace)
    if target.exists() and target.resolve() == model.resolve():
        raise ExportError(f"{target}: is the input model; give --out a new path")
    spec = InputSpec(info.input_spec.height, info.input_spec.width, info.input_spec.channels)
    pipeline = Pipeline.parse(info.preprocess or None, str(model))
    options = QuantOptions(mode=quant, calibration=calib_method, calib_size=calib_size)
    # one folder: at most half calibrates, int8 is scored on the rest (the validator drops the overlap)
    data = export_data(None, spec, pipeline, tuple(info.labels), options, True, calib_data=calib_data,
                       eval_data=eval_data, eval_limit=None, data_dir=None)
    for note in data.notes:
        say((note, "yellow"), target=err_console)
    gates = Gates(int8_max_accuracy_drop=max_int8_drop, int8_min_agreement=min_int8_agreement / 100)
    log = (lambda m: None) if as_json else (lambda m: say((m, "dim"), target=err_console))
    try:
        report = quantize_onnx(model, target, data.calibration.x, data.evaluation, data.quant, gates, log)
    except GateError as exc:
        if exc.report is not None:
            _show(exc.report, as_json)
        raise
    _show(report, as_json)
    if not as_json:
        say(("wrote ", "green"), str(target))


def _show(report: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        print_variants(report["variants"], f"{report['name']}: int8 vs the fp32 ONNX file on "
                       f"{report['validation_data']}", reference="fp32")
