"""Export, validate, quantize and package models: what `edgecls export`, `validate`, `quantize` and `exports` call.

A gate failure is a result, not an exception: `result.passed` is False and `result.failure` says which variant
failed which gate, by how much, on how many images. Errors a user can act on (a missing file, bad data) raise
`edgecls.runtime.errors.EdgeclsError` subclasses with one clear line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from .. import config
from ..exporters.gates import Gates
from ..exporters.quantize import QuantOptions

Log = Callable[[str], None]
QUANT_DEFAULTS = {"quant": "auto", "calib_size": 512, "calib_method": "minmax"}


def _quiet(message: str) -> None:
    pass


@dataclass(frozen=True)
class ExportResult:
    """What an export did: the report (also written as <name>.export.json beside the models) and what it wrote."""

    name: str
    folder: Path  # where the variants are
    report: Optional[dict[str, Any]]  # None when only packaging an earlier export
    notes: tuple[str, ...] = ()  # how the images were chosen, the declared preprocessing
    packages: dict[str, dict] = field(default_factory=dict)  # package format -> its summary (web, ort)
    reused: Optional[Path] = None  # the earlier export that was packaged without converting again
    failure: Optional[str] = None  # which variant failed which gate (passed is False then)

    @property
    def passed(self) -> bool:
        return self.failure is None

    @property
    def written(self) -> tuple[Path, ...]:
        return tuple(self.folder / r["path"] for r in (self.report or {}).get("variants", []) if r["written"])

    @property
    def removed(self) -> tuple[Path, ...]:
        return tuple(self.folder / p for p in (self.report or {}).get("removed_stale", []))

    @property
    def report_path(self) -> Optional[Path]:
        return None if self.report is None else self.folder / f"{self.name}.export.json"


def _check_options(formats: tuple[str, ...], quant: QuantOptions) -> None:
    """An int8 option given without int8 would be silently ignored: say so instead."""
    from ..exporters.errors import ExportError
    from ..exporters.formats import accepting

    given = [name for name, default in QUANT_DEFAULTS.items()
             if getattr(quant, {"quant": "mode", "calib_method": "calibration"}.get(name, name)) != default]
    for option in given:
        users = accepting(option)
        if not set(users) & set(formats):
            raise ExportError(f"--{option.replace('_', '-')} is read by {' / '.join(users)} only, and this export makes "
                              f"{', '.join(formats)} (add --int8, or --quant static|auto)")


def export(target: str, *, int8: bool = False, fp16: bool = False, quant: QuantOptions = QuantOptions(),
           gates: Gates = Gates(), workspace: Optional[config.PathLike] = None, out: Optional[Path] = None,
           packages: Optional[dict[str, Any]] = None, reexport: bool = False, on_log: Log = _quiet,
           on_note: Log = _quiet, **data: Any) -> ExportResult:
    """Convert `target` (a model name or a .keras file) to ONNX, validate every variant, write what passes.

    packages: {"web" | "ort": exporters.formats.PackageOptions} made from the written files (an earlier export
    of a model name is packaged as it is unless `reexport`, int8 or fp16). data: the options of
    `edgecls.exporting.prepare_job` (calib_data, eval_data, labels_file, eval_limit, data_dir, opset,
    preprocess, image_size, head, custom_objects, unsafe). on_log: progress; on_note: how the data was chosen."""
    from ..exporters.errors import GateError
    from ..exporters.export import run_export
    from ..exporting import prepare_job

    packages = packages or {}
    if packages and not (reexport or int8 or fp16):
        from ..exporters.web.package import exported_model

        existing = exported_model(target, workspace, out)
        if existing is not None:
            from ..runtime.variants import split_name

            name = (split_name(existing.name) or (existing.stem, "fp32"))[0]
            return ExportResult(name, existing.parent, None, packages=_package(existing, packages, workspace),
                                reused=existing)
    variants = ("fp32",) + (("int8",) if int8 else ()) + (("fp16",) if fp16 else ())
    job, notes = prepare_job(target, variants=variants, workspace=workspace, out_dir=out, quant=quant, gates=gates,
                             **data)
    _check_options(job.formats(), job.quant)
    for note in notes:
        on_note(note)
    try:
        report, failure = run_export(job, on_log=on_log), None
    except GateError as exc:
        if exc.report is None:
            raise
        report, failure = exc.report, str(exc)
    done = {} if failure else _package(Path(job.out_dir) / f"{job.name}.onnx", packages, workspace)
    return ExportResult(job.name, Path(job.out_dir), report, tuple(notes), done, None, failure)


def _package(fp32_model: Path, packages: dict[str, Any], workspace: Optional[config.PathLike]) -> dict[str, dict]:
    """Package formats of an exported model; bundles of a shipped model go to the workspace."""
    import dataclasses

    from ..runtime.store import locate

    if not packages:
        return {}
    folder = locate(fp32_model).folder.output_dir(workspace)
    placed = {name: dataclasses.replace(options, folder=Path(options.folder or folder / _subfolder(name)))
              for name, options in packages.items()}
    return package(fp32_model, placed)


def _subfolder(package_format: str) -> str:
    from ..runtime.variants import VARIANTS

    return VARIANTS[package_format].folder


def package(fp32_model: Path, packages: dict[str, Any]) -> dict[str, dict]:
    """Make package formats ({"web" | "ort": PackageOptions}) from an exported fp32 .onnx and its variants."""
    from ..exporters.web.package import package as make

    return make(Path(fp32_model), packages)


@dataclass(frozen=True)
class ValidationResult:
    """One exported file checked again: the validation row (figures, failures, notes) and what it was
    compared with ("Keras", "fp32 ONNX", or "" when no reference was at hand: checks and accuracy only)."""

    model: Path
    row: dict[str, Any]
    reference: str

    @property
    def passed(self) -> bool:
        return bool(self.row["passed"])

    @property
    def failure(self) -> Optional[str]:
        return None if self.passed else f"{self.model}: validation gate failed: {'; '.join(self.row['failures'])}"


def validate(model: Path, *, keras: Optional[Path] = None, eval_data: Optional[Path] = None,
             eval_limit: Optional[int] = None, gates: Gates = Gates(), workspace: Optional[config.PathLike] = None,
             data_dir: Optional[config.PathLike] = None) -> ValidationResult:
    """Validate an exported file again against its Keras source, else the fp32 .onnx exported with it; with
    neither, run the file checks and score it on `eval_data`."""
    from ..errors import ModelNotFoundError
    from ..exporters.export import validate_file
    from ..exporting import validation_images, validation_reference

    model = Path(model)
    reference = validation_reference(model, keras, workspace)
    if reference is None:
        if eval_data is None:
            raise ModelNotFoundError(f"{model}: no Keras source (model.keras beside it or in the workspace) and no "
                                     "fp32 .onnx beside it to validate against; give --keras, or --eval-data to "
                                     "check the file and score it")
        return ValidationResult(model, _checked_and_scored(model, eval_data), "")
    data = validation_images(model, eval_data, eval_limit, workspace, data_dir)
    return ValidationResult(model, validate_file(model, reference, data, gates), reference.name)


def _checked_and_scored(model: Path, folder: Path) -> dict[str, Any]:
    """onnx.checker full_check, the runtime's model checks, and accuracy on a labelled folder."""
    from ..evaluation import evaluate_onnx
    from ..exporters.validate import check_file
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
            "failures": failures, "notes": [], "passed": not failures,
            "validation_data": f"{folder} ({scored['num_samples']} images)"}


@dataclass(frozen=True)
class QuantizeResult:
    """A gated int8 made from an fp32 .onnx file: the report and the file written (None when no int8 passed)."""

    source: Path
    output: Path
    report: dict[str, Any]
    notes: tuple[str, ...] = ()
    failure: Optional[str] = None

    @property
    def passed(self) -> bool:
        return self.failure is None


def quantize(model: Path, *, calib_data: Path, eval_data: Optional[Path] = None, out: Optional[Path] = None,
             quant: QuantOptions = QuantOptions(), gates: Gates = Gates(),
             workspace: Optional[config.PathLike] = None, on_log: Log = _quiet,
             on_note: Log = _quiet) -> QuantizeResult:
    """Quantize an fp32 .onnx to int8, validated against the fp32 file on labelled images held apart from
    calibration; written only if it passes the int8 gates."""
    from ..exporters.errors import ExportError, GateError
    from ..exporters.onnx_int8 import quantize_onnx
    from ..exporting import export_data
    from ..runtime.metadata import read_info
    from ..runtime.spec import InputSpec
    from ..runtime.transforms import Pipeline

    model = Path(model)
    if model.suffix != ".onnx":
        raise ExportError(f"{model}: expected an exported .onnx file")
    if not model.is_file():
        raise ExportError(f"{model}: no such model file")
    info = read_info(model)
    target = Path(out) if out else _int8_path(model, info.name, workspace)
    if target.exists() and target.resolve() == model.resolve():
        raise ExportError(f"{target}: is the input model; give --out a new path")
    pipeline = Pipeline.parse(info.preprocess or None, str(model))
    spec = InputSpec(info.input_spec.height, info.input_spec.width, info.input_spec.channels)  # pixels: NHWC
    # one folder: at most half calibrates, int8 is scored on the rest (the validator drops the overlap)
    data = export_data(None, spec, pipeline, tuple(info.labels), quant, True, calib_data=calib_data,
                       eval_data=eval_data, eval_limit=None, data_dir=None)
    for note in data.notes:
        on_note(note)
    try:
        report = quantize_onnx(model, target, data.calibration.x, data.evaluation, data.quant, gates, on_log)
    except GateError as exc:
        if exc.report is None:
            raise
        return QuantizeResult(model, target, exc.report, tuple(data.notes), str(exc))
    return QuantizeResult(model, target, report, tuple(data.notes))


def _int8_path(model: Path, name: str, workspace: Optional[config.PathLike]) -> Path:
    """The int8 file of the input's model: beside the input, or in the workspace when the input is shipped."""
    from ..runtime.store import ModelFolder, locate

    ref = locate(model)
    folder = ref.folder if not ref.folder.shipped else ModelFolder(name or ref.name, ref.folder.output_dir(workspace))
    return ModelFolder(ref.name, folder.directory).variant_path("int8")


@dataclass(frozen=True)
class ExportRow:
    """One exported variant as its export report records it."""

    model: str
    variant: str
    file: str
    size_bytes: int
    keras_accuracy: Optional[float]
    accuracy: Optional[float]
    top1_agreement: float
    max_abs_diff: float
    samples: int


def exports(workspace: Optional[config.PathLike] = None) -> list[ExportRow]:
    """Every written variant, from the <name>.export.json reports (workspace first, then the shipped zoo; a model
    exported in the workspace shadows the shipped one)."""
    from ..runtime.store import search_dirs

    first: dict[str, Path] = {}
    for root in search_dirs(workspace):
        for path in sorted(root.glob("*/*.export.json")):
            first.setdefault(path.parent.name, path)
    rows = []
    for _, path in sorted(first.items()):
        report = json.loads(path.read_text())
        for v in (v for v in report["variants"] if v.get("written")):
            val = v["validation"]
            rows.append(ExportRow(report["name"], v["variant"], Path(v["path"]).name, v["size_bytes"],
                                  val.get("keras_accuracy"), val.get("accuracy"), val["top1_agreement"],
                                  val["max_abs_diff"], val["samples"]))
    return rows
