"""`edgecls export` and `edgecls validate`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from ..formatting import percent
from .root import WorkspaceOption, DataDirOption, JsonOption, OptPath, app, err_console, print_table, say


def _gates(max_diff: float, min_agreement: float, max_int8_drop: float, min_int8_agreement: Optional[float] = None):
    from ..exporters.validate import Gates

    extra = {} if min_int8_agreement is None else {"int8_min_agreement": min_int8_agreement / 100}
    return Gates(fp32_min_agreement=min_agreement / 100, fp32_max_abs_diff=max_diff,
                 int8_max_accuracy_drop=max_int8_drop, **extra)


GateOptions = dict(
    max_diff=typer.Option(1e-4, "--max-diff", help="fp32 gate: max abs difference of probabilities vs Keras."),
    min_agreement=typer.Option(100.0, "--min-agreement", help="fp32 gate: top-1 agreement with Keras, percent."),
    max_int8_drop=typer.Option(0.5, "--max-int8-drop", help="int8 gate: max accuracy drop vs Keras, points."),
    min_int8_agreement=typer.Option(93.0, "--min-int8-agreement", help="int8 gate: top-1 agreement with Keras, percent."),
)


def print_variants(rows: list[dict[str, Any]], title: str, reference: str = "Keras") -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title), title_justify="left", show_edge=False, pad_edge=False)
    reasons: list[tuple[str, list[str]]] = []
    for col in ("variant", "size", f"{reference} acc", "ONNX acc", "agreement", "max |diff|", "mean |diff|", "gate"):
        table.add_column(col, justify="left" if col in ("variant", "gate") else "right")
    for r in rows:
        v = r["validation"]
        acc = lambda key: f"{v[key] * 100:.2f}%" if key in v else "n/a"  # noqa: E731
        if r.get("superseded"):
            gate = Text("superseded", style="yellow")
        elif r["passed"]:
            gate = Text.assemble(("pass", "green"), ("" if r.get("written", True) else " (not written)", "dim"))
        else:  # the reasons go below the table: a cell of prose would push every row past 80 columns
            gate = Text("FAIL", style="red")
            reasons.append((r["variant"], r["failures"]))
        num = lambda key, fmt: format(v[key], fmt) if key in v else "n/a"  # noqa: E731
        agreement = f"{v['top1_agreement'] * 100:.2f}%" if "top1_agreement" in v else "n/a"
        floats = len(r.get("quantization", {}).get("float_nodes", []))
        name = r["variant"] + (f" ({floats} nodes float)" if floats else "")
        table.add_row(Text(name), f"{r['size_bytes'] / 1024:,.0f} KiB", acc("keras_accuracy"), acc("accuracy"),
                      agreement, num("max_abs_diff", ".1e"), num("mean_abs_diff", ".1e"), gate)
    print_table(table)
    for variant, failures in reasons:
        for failure in failures:
            say((f"{variant} FAIL: ", "red"), failure)


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
    from ..exporters.errors import GateError
    from ..exporters.export import run_export
    from ..exporters.convert import parse_image_size
    from ..exporters.quantize import QuantOptions
    from ..exporting import prepare_job

    packaging = dict(web=web or web_dir is not None, web_dir=web_dir, web_variant=web_variant, web_format=web_format,
                     mobile=mobile or mobile_dir is not None, mobile_dir=mobile_dir, as_json=as_json,
                     workspace=workspace)
    if (packaging["web"] or packaging["mobile"]) and not (reexport or int8 or fp16):
        from ..exporters.web.package import exported_model

        existing = exported_model(target, workspace, out)
        if existing is not None and not as_json:
            say(("already exported: ", "dim"), str(existing), ("  (packaging it; --reexport converts again)", "dim"),
                target=err_console)
        if existing is not None:
            _package(existing, **packaging)
            return
    eval_data = eval_data or data
    variants = ("fp32",) + (("int8",) if int8 else ()) + (("fp16",) if fp16 else ())
    job, notes = prepare_job(
        target, variants=variants, workspace=workspace, data_dir=data_dir, calib_data=calib_data,
        eval_data=eval_data, labels_file=labels, eval_limit=eval_limit, out_dir=out, opset=opset,
        quant=QuantOptions(mode=quant, calibration=calib_method, calib_size=calib_size),
        gates=_gates(max_diff, min_agreement, max_int8_drop, min_int8_agreement), preprocess=preprocess,
        image_size=parse_image_size(image_size), head=head, custom_objects=custom_objects, unsafe=unsafe,
    )
    for note in notes:  # notes and progress on stderr: stdout holds the results (one JSON document with --json)
        say((note, "yellow"), target=err_console)
    log = (lambda m: None) if as_json else (lambda m: say((m, "dim"), target=err_console))
    try:
        report = run_export(job, on_log=log)
    except GateError as exc:
        if exc.report is not None:
            if as_json:
                print(json.dumps(exc.report, indent=2))
            else:
                print_variants(exc.report["variants"], f"{job.name}: validated on {job.eval_data.description}")
        raise
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        print_variants(report["variants"], f"{job.name}: validated on {job.eval_data.description}")
        say("output: ", f"{report['output']} ({report['output_detected_from']})")
        if report.get("int8_speed"):
            say(("int8: ", "bold"), report["int8_speed"]["verdict"], (" (measured now, on this machine)", "dim"))
        for r in report["variants"]:
            if r["written"]:
                say(("wrote ", "green"), str(Path(job.out_dir) / r["path"]))
        for path in report.get("removed_stale", []):
            say(("removed ", "yellow"), str(Path(job.out_dir) / path), " (stale variant, not rebuilt by this export)",
                target=err_console)
        say("report: ", str(Path(job.out_dir) / (job.name + ".export.json")))
    if packaging["web"] or packaging["mobile"]:
        _package(Path(job.out_dir) / f"{job.name}.onnx", **packaging)


def _package(fp32_model: Path, web: bool, web_dir: OptPath, web_variant: str, web_format: str, mobile: bool,
             mobile_dir: OptPath, as_json: bool, workspace: OptPath = None) -> None:
    """--web / --mobile: package the exported .onnx files (edgecls.exporters.web); bundles of a shipped model
    go to the workspace."""
    from ..exporters.web.package import package
    from ..runtime.store import locate

    folder = locate(fp32_model).folder.output_dir(workspace)
    done = package(fp32_model, (web_dir or folder / "web") if web else None, web_variant,
                   (mobile_dir or folder / "mobile") if mobile else None,
                   log=(lambda m: None) if as_json else (lambda m: say((m, "dim"), target=err_console)),
                   web_format=web_format)
    if as_json:
        print(json.dumps(done, indent=2))
        return
    if "web" in done:
        w = done["web"]
        say(("wrote ", "green"), w["folder"], f"  web bundle: {w['model_file']} ({w['model_bytes'] / 1024:,.0f} KiB), "
            f"{w['total_bytes'] / 2**20:.1f} MiB in all with onnxruntime-web {w['onnxruntime_web']}; serve the folder "
            "from any static host (python -m http.server) and open index.html")
    if "mobile" in done:
        m = done["mobile"]
        for file, row in m["models"].items():
            say(("wrote ", "green"), str(Path(m["folder"]) / file),
                f"  ({row['size_bytes'] / 1024:,.0f} KiB; max |diff| vs ONNX {row['max_abs_diff']:.1e})")
        say(("wrote ", "green"), m["required_operators"], f"  ({len(m['operators'])} operators for a reduced build)")


@app.command()
def validate(
    model: Path = typer.Argument(..., help="An exported .onnx file."),
    keras_model: OptPath = typer.Option(None, "--keras", help="The Keras source (default: model.keras beside the file, "
                                        "else the model card's of its name)."),
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
    """Re-run validation of an exported model against its Keras source; exits 1 if a gate fails."""
    from ..errors import ModelNotFoundError
    from ..exporting import revalidation_inputs
    from ..exporters.export import revalidate
    from ..runtime.errors import EdgeclsError

    try:
        source, data = revalidation_inputs(model, keras_model, eval_data, eval_limit, workspace, data_dir)
    except ModelNotFoundError:
        if keras_model is not None or eval_data is None:
            raise
        source = None  # a bare .onnx with a labelled folder: the checks that need no Keras reference
    if source is None:
        result = _bare_validation(model, eval_data)
        say(("no Keras source: checked the file and scored its accuracy; the agreement and difference gates need "
             "--keras", "yellow"), target=err_console)
        if as_json:
            print(json.dumps(result, indent=2))
        else:
            print_variants([result], f"{result['name']}: checked on {result['validation_data']}")
        return
    result = revalidate(model, source, data, _gates(max_diff, min_agreement, max_int8_drop))
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print_variants([result], f"{result['name']}: validated on {data.description}")
    if not result["passed"]:
        raise EdgeclsError(f"{model}: validation gate failed: {'; '.join(result['failures'])}")


def _bare_validation(model: Path, folder: Path) -> dict[str, Any]:
    """onnx.checker full_check, the runtime's model checks, and accuracy on a labelled folder."""
    from ..evaluation import evaluate_onnx
    from ..exporters.export import check_file
    from ..runtime.metadata import read_info

    failures = []
    try:
        check_file(model.read_bytes())
    except Exception as exc:  # noqa: BLE001 - the checker raises its own error types
        failures.append(f"fails onnx.checker full_check: {str(exc).splitlines()[0]}")
    info = read_info(model)
    scored = evaluate_onnx(model, folder)
    return {"variant": info.variant, "path": str(model), "size_bytes": model.stat().st_size, "name": info.name,
            "validation": {"accuracy": scored["accuracy"], "samples": scored["num_samples"],
                           "recorded_accuracy": (info.validation or {}).get("accuracy")},
            "failures": failures, "passed": not failures, "validation_data": f"{folder} ({scored['num_samples']} images)"}


def export_rows(workspace: OptPath = None) -> list[dict[str, Any]]:
    """One row per exported variant, read from the <name>.export.json reports (workspace first, then the
    shipped zoo; a model exported in the workspace shadows the shipped one)."""
    from ..runtime.store import search_dirs

    rows, first = [], {}
    for root in search_dirs(workspace):
        for path in sorted(root.glob("*/*.export.json")):
            first.setdefault(path.parent.name, path)
    for _, path in sorted(first.items()):
        report = json.loads(path.read_text())
        for v in report["variants"]:
            if v.get("written"):
                val = v["validation"]
                rows.append({"model": report["name"], "variant": v["variant"], "size_bytes": v["size_bytes"],
                             "keras_accuracy": val.get("keras_accuracy"), "accuracy": val.get("accuracy"),
                             "top1_agreement": val["top1_agreement"], "max_abs_diff": val["max_abs_diff"],
                             "samples": val["samples"], "file": Path(v["path"]).name})
    return rows


@app.command()
def exports(
    as_json: bool = JsonOption,
    markdown: bool = typer.Option(False, "--markdown", help="Print a Markdown table (as in README)."),
    workspace: OptPath = WorkspaceOption,
) -> None:
    """List exported models with their validation results (from the export reports)."""
    rows = export_rows(workspace)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if markdown:
        print("| model | variant | file | size | Keras acc | ONNX acc | top-1 agreement | max abs diff |")
        print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for r in rows:
            print(f"| `{r['model']}` | {r['variant']} | `{r['file']}` | {r['size_bytes'] / 1024:,.0f} KiB | "
                  f"{percent(r['keras_accuracy'])} | {percent(r['accuracy'])} | {percent(r['top1_agreement'])} | "
                  f"{r['max_abs_diff']:.1e} |")
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(title="exported models", title_justify="left", show_edge=False, pad_edge=False)
    for col in ("model", "variant", "file", "size", "Keras acc", "ONNX acc", "agreement", "max |diff|"):
        table.add_column(col, justify="right" if col in ("size", "Keras acc", "ONNX acc", "agreement", "max |diff|") else "left")
    for r in rows:
        table.add_row(Text(r["model"]), Text(r["variant"]), Text(r["file"]), f"{r['size_bytes'] / 1024:,.0f} KiB", percent(r["keras_accuracy"]),
                      percent(r["accuracy"]), percent(r["top1_agreement"]), f"{r['max_abs_diff']:.1e}")
    print_table(table)
