"""`edgecls export`, `edgecls validate` and `edgecls exports`: parse, call edgecls.api, print."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from ..formatting import percent
from .root import WorkspaceOption, DataDirOption, JsonOption, OptPath, app, err_console, print_table, say


def _gates(max_diff: float, min_agreement: float, max_int8_drop: float, min_int8_agreement: Optional[float] = None,
           max_int8_error: Optional[float] = None):
    from ..exporters.gates import Gates

    extra = {} if min_int8_agreement is None else {"int8_min_agreement": min_int8_agreement / 100}
    if max_int8_error is not None:
        extra["int8_max_output_error"] = max_int8_error
    return Gates(fp32_min_agreement=min_agreement / 100, fp32_max_abs_diff=max_diff,
                 int8_max_accuracy_drop=max_int8_drop, **extra)


GateOptions = dict(
    max_diff=typer.Option(1e-4, "--max-diff", help="fp32 gate: max abs difference of probabilities vs Keras."),
    min_agreement=typer.Option(100.0, "--min-agreement", help="fp32 gate: top-1 agreement with Keras, percent "
                               "(near ties within the output error not counted)."),
    max_int8_drop=typer.Option(0.5, "--max-int8-drop", help="int8 gate: max accuracy drop vs Keras, points, when the "
                               "validation images show a drop."),
    min_int8_agreement=typer.Option(93.0, "--min-int8-agreement", help="int8 gate: top-1 agreement with Keras, "
                                    "percent (near ties within the output error not counted)."),
    max_int8_error=typer.Option(0.1, "--max-int8-error", help="int8 gate: 99th percentile of each image's largest "
                                "score difference vs Keras."),
)


def print_variants(rows: list[dict[str, Any]], title: str, reference: str = "Keras") -> None:
    """The validation table, then each variant's failures and notes (the evidence: figure, limit, images)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title), title_justify="left", show_edge=False, pad_edge=False)
    for col in ("variant", "size", f"{reference} acc", "ONNX acc", "agreement", "max |diff|", "mean |diff|", "gate"):
        table.add_column(col, justify="left" if col in ("variant", "gate") else "right")
    for r in rows:
        v = r["validation"]
        acc = lambda key: f"{v[key] * 100:.2f}%" if key in v else "n/a"  # noqa: E731
        num = lambda key, fmt: format(v[key], fmt) if key in v else "n/a"  # noqa: E731
        floats = len(r.get("quantization", {}).get("float_nodes", []))
        name = r["variant"] + (f" ({floats} nodes float)" if floats else "")
        table.add_row(Text(name), f"{r['size_bytes'] / 1024:,.0f} KiB", acc("keras_accuracy"), acc("accuracy"),
                      acc("top1_agreement"), num("max_abs_diff", ".1e"), num("mean_abs_diff", ".1e"), _gate_cell(r))
    print_table(table)
    for r in rows:  # reasons below the table: a cell of prose would push every row past 80 columns
        for failure in r["failures"]:
            say((f"{r['variant']} FAIL: ", "red"), failure)
        if not r.get("superseded"):
            for note in r.get("notes", []):
                say((f"{r['variant']}: ", "dim"), (note, "dim"))
        _print_layers(r)


def _gate_cell(r: dict[str, Any]):
    from rich.text import Text

    if r.get("superseded"):
        return Text("superseded", style="yellow")
    if r["passed"]:
        return Text.assemble(("pass", "green"), ("" if r.get("written", True) else " (not written)", "dim"))
    return Text("FAIL", style="red")


def _print_layers(r: dict[str, Any]) -> None:
    """The per-layer int8 evidence in two lines (the export report and `edgecls report` list it all)."""
    from ..report.int8_layers import cost_sentence

    evidence = r.get("int8_layers")
    if not evidence:
        return
    worst = ", ".join(f"{layer['nodes'][0]} {layer['sqnr_db']:.1f} dB" for layer in evidence["layers"][:3])
    if worst:
        say((f"{r['variant']} layers: ", "dim"), f"noisiest in int8 (SQNR): {worst}")
    kept = [k for k in evidence["kept_float"] if k["weights"]]
    if kept and evidence.get("kept_float_cost"):
        say((f"{r['variant']} layers: ", "dim"), f"kept in float: {', '.join(k['node'] for k in kept)} "
            f"({sum(k['weights'] for k in kept):,} weights). {cost_sentence(evidence['kept_float_cost'])}")


@app.command()
def export(
    target: str = typer.Argument(..., help="A model name (e.g. mnist: your workspace, then the shipped zoo) or a path to a .keras file."),
    int8: bool = typer.Option(False, "--int8", help="Also export a calibrated int8 model (static QDQ, per-channel)."),
    fp16: bool = typer.Option(False, "--fp16", help="Also export an fp16 model (for GPU targets)."),
    quant: str = typer.Option("auto", "--quant", help="int8 method: static | dynamic | auto (dynamic if static fails)."),
    calib_data: OptPath = typer.Option(None, "--calib-data", help="Calibration images, folder/<class>/*."),
    calib_size: int = typer.Option(512, "--calib-size", help="Calibration images, a stratified sample."),
    calib_method: str = typer.Option("minmax", "--calib-method", help="minmax | percentile | entropy."),
    labels: OptPath = typer.Option(None, "--labels", help="Class names, one per line (for a .keras file)."),
    eval_data: OptPath = typer.Option(None, "--eval-data", help="Labelled folder to validate on (default: the model's "
                                      "own held-out test split)."),
    data: OptPath = typer.Option(None, "--data", help="Same as --eval-data (the flag eval, bench and report take)."),
    eval_limit: Optional[int] = typer.Option(None, "--eval-limit", help="Validate on a stratified sample of N test images."),
    out: OptPath = typer.Option(None, "--out", help="Output folder (default: beside the Keras model)."),
    opset: int = typer.Option(17, "--opset", help="ONNX opset."),
    preprocess: Optional[str] = typer.Option(
        None, "--preprocess", help="Declared preprocessing: a preset (digits, silhouette, photo, stretch) or a JSON "
        "list of steps. Default: what the model was trained with."),
    image_size: Optional[str] = typer.Option(
        None, "--image-size", help="HEIGHTxWIDTH to export a model that takes any image size (e.g. 224x224)."),
    head: Optional[str] = typer.Option(
        None, "--head", help="What the model outputs, if detection is wrong: probabilities | logits | multilabel | "
        "multilabel-logits | binary | binary-logit."),
    custom_objects: Optional[str] = typer.Option(
        None, "--custom-objects", help="A .py file or importable module defining the model's custom layers/classes."),
    unsafe: bool = typer.Option(
        False, "--unsafe", help="Load Lambda layers' Python code from the file (only for files you trust)."),
    max_diff: float = GateOptions["max_diff"],
    min_agreement: float = GateOptions["min_agreement"],
    max_int8_drop: float = GateOptions["max_int8_drop"],
    min_int8_agreement: float = GateOptions["min_int8_agreement"],
    max_int8_error: float = GateOptions["max_int8_error"],
    web: bool = typer.Option(False, "--web", help="Also write a static web bundle (onnxruntime-web; <out>/web/)."),
    web_dir: OptPath = typer.Option(None, "--web-dir", help="Folder for the web bundle (implies --web)."),
    web_variant: str = typer.Option("auto", "--web-variant", help="Bundle model: auto (int8 if it passed) | fp32 | int8."),
    web_format: str = typer.Option("ort", "--web-format", help="Bundle model file: ort (pre-optimised, loads faster) | onnx."),
    mobile: bool = typer.Option(False, "--mobile", help="Also write ORT-format models + required_operators config."),
    mobile_dir: OptPath = typer.Option(None, "--mobile-dir", help="Folder for the mobile files (implies --mobile)."),
    reexport: bool = typer.Option(False, "--reexport", help="With --web/--mobile: convert again even if exported."),
    as_json: bool = JsonOption,
    data_dir: OptPath = DataDirOption,
    workspace: OptPath = WorkspaceOption,
) -> None:
    """Convert to ONNX, validate every variant against Keras, write only what passes its gate.

    --web / --mobile package the exported .onnx files; for a model already exported (and no --int8/--fp16)
    they package the files on disk without converting again."""
    from ..api import export as run
    from ..exporters.convert import parse_image_size
    from ..exporters.errors import GateError
    from ..exporters.quantize import QuantOptions

    log = (lambda m: None) if as_json else (lambda m: say((m, "dim"), target=err_console))
    result = run(
        target, int8=int8, fp16=fp16, quant=QuantOptions(mode=quant, calibration=calib_method, calib_size=calib_size),
        gates=_gates(max_diff, min_agreement, max_int8_drop, min_int8_agreement, max_int8_error), workspace=workspace,
        out=out, packages=_packages(web, web_dir, web_variant, web_format, mobile, mobile_dir, log), reexport=reexport,
        on_log=log, on_note=lambda note: say((note, "yellow"), target=err_console), calib_data=calib_data,
        eval_data=eval_data or data, labels_file=labels, eval_limit=eval_limit, data_dir=data_dir, opset=opset,
        preprocess=preprocess, image_size=parse_image_size(image_size), head=head, custom_objects=custom_objects,
        unsafe=unsafe)
    if as_json:
        print(json.dumps(result.packages if result.reused else result.report, indent=2))
    elif result.reused:
        say(("already exported: ", "dim"), str(result.reused), ("  (packaged it; --reexport converts again)", "dim"),
            target=err_console)
    else:
        _show_export(result)
    if not result.passed:
        raise GateError(result.failure)
    if result.packages and not as_json:
        _show_packages(result.packages)
    elif result.packages and not result.reused:
        print(json.dumps(result.packages, indent=2))


def _packages(web, web_dir, web_variant, web_format, mobile, mobile_dir, log) -> dict:
    from ..exporters.formats import PackageOptions

    asked = {"web": (web or web_dir is not None, web_dir), "ort": (mobile or mobile_dir is not None, mobile_dir)}
    return {name: PackageOptions(folder, web_variant, web_format, log) for name, (on, folder) in asked.items() if on}


def _show_export(result) -> None:
    report = result.report
    print_variants(report["variants"], f"{result.name}: validated on {report['validation_data']}")
    say("output: ", f"{report['output']} ({report['output_detected_from']})")
    if report.get("int8_speed"):
        say(("int8: ", "bold"), report["int8_speed"]["verdict"], (" (measured now, on this machine)", "dim"))
    for path in result.written:
        say(("wrote ", "green"), str(path))
    for path in result.removed:
        say(("removed ", "yellow"), str(path), " (stale variant, not rebuilt by this export)", target=err_console)
    say("report: ", str(result.report_path))


def _show_packages(done: dict) -> None:
    if "web" in done:
        w = done["web"]
        say(("wrote ", "green"), w["folder"], f"  web bundle: {w['model_file']} ({w['model_bytes'] / 1024:,.0f} KiB), "
            f"{w['total_bytes'] / 2**20:.1f} MiB in all with onnxruntime-web {w['onnxruntime_web']}; serve the folder "
            "from any static host (python -m http.server) and open index.html")
    if "ort" in done:
        m = done["ort"]
        for file, row in m["models"].items():
            say(("wrote ", "green"), str(Path(m["folder"]) / file),
                f"  ({row['size_bytes'] / 1024:,.0f} KiB; max |diff| vs ONNX {row['max_abs_diff']:.1e})")
        say(("wrote ", "green"), m["required_operators"], f"  ({len(m['operators'])} operators for a reduced build)")


@app.command()
def validate(
    model: Path = typer.Argument(..., help="An exported .onnx file."),
    keras_model: OptPath = typer.Option(None, "--keras", help="The Keras source (default: model.keras beside the file, "
                                        "else the model card's of its name; else the fp32 .onnx beside the file)."),
    eval_data: OptPath = typer.Option(None, "--eval-data", "--data", help="Labelled folder to validate on (default: "
                                      "the model's own held-out test split)."),
    eval_limit: Optional[int] = typer.Option(None, "--eval-limit", help="Validate on a stratified sample of N images."),
    max_diff: float = GateOptions["max_diff"],
    min_agreement: float = GateOptions["min_agreement"],
    max_int8_drop: float = GateOptions["max_int8_drop"],
    as_json: bool = JsonOption,
    data_dir: OptPath = DataDirOption,
    workspace: OptPath = WorkspaceOption,
) -> None:
    """Re-run validation of an exported model against its Keras source (or its fp32 .onnx); exits 1 if a gate
    fails."""
    from ..api import validate as run
    from ..runtime.errors import EdgeclsError

    result = run(model, keras=keras_model, eval_data=eval_data, eval_limit=eval_limit, workspace=workspace,
                 data_dir=data_dir, gates=_gates(max_diff, min_agreement, max_int8_drop))
    if result.reference != "Keras":
        say(("no Keras source: " + ("validated against the fp32 ONNX file exported with it" if result.reference else
             "checked the file and scored its accuracy; the agreement and difference gates need --keras"), "yellow"),
            target=err_console)
    if as_json:
        print(json.dumps(result.row, indent=2))
    else:
        verb = "validated" if result.reference else "checked"
        print_variants([result.row], f"{result.row['name']}: {verb} on {result.row['validation_data']}",
                       reference=result.reference or "Keras")
    if not result.passed:
        raise EdgeclsError(result.failure)


@app.command()
def exports(
    as_json: bool = JsonOption,
    markdown: bool = typer.Option(False, "--markdown", help="Print a Markdown table (as in README)."),
    workspace: OptPath = WorkspaceOption,
) -> None:
    """List exported models with their validation results (from the export reports)."""
    from dataclasses import asdict

    from ..api import exports as listing

    rows = listing(workspace)
    if as_json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
        return
    if markdown:
        print("| model | variant | file | size | Keras acc | ONNX acc | top-1 agreement | max abs diff |")
        print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for r in rows:
            print(f"| `{r.model}` | {r.variant} | `{r.file}` | {r.size_bytes / 1024:,.0f} KiB | "
                  f"{percent(r.keras_accuracy)} | {percent(r.accuracy)} | {percent(r.top1_agreement)} | "
                  f"{r.max_abs_diff:.1e} |")
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(title="exported models", title_justify="left", show_edge=False, pad_edge=False)
    for col in ("model", "variant", "file", "size", "Keras acc", "ONNX acc", "agreement", "max |diff|"):
        table.add_column(col, justify="right" if col in ("size", "Keras acc", "ONNX acc", "agreement", "max |diff|") else "left")
    for r in rows:
        table.add_row(Text(r.model), Text(r.variant), Text(r.file), f"{r.size_bytes / 1024:,.0f} KiB",
                      percent(r.keras_accuracy), percent(r.accuracy), percent(r.top1_agreement), f"{r.max_abs_diff:.1e}")
    print_table(table)
