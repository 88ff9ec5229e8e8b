"""Toolkit side of export: find the Keras model and the data, then hand a job to edgecls.exporters.

The images come from the model's data plan (edgecls.data.plan) unless the user gives folders: export
validates on the held-out test split, calibrates int8 on training images and calibrates the unsure flag on
the validation images training held out, so no image is used for two of these.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from . import config
from .card import ModelCard
from .data.plan import DataPlan, Images, declared_pipeline, plan_for_onnx
from .errors import DataError
from .exporters.errors import ExportError
from .exporters.export import ExportJob, UnsureData
from .exporters.gates import Gates
from .exporters.quantize import QuantOptions, stratified_sample
from .exporters.reference import Reference
from .exporters.validate import EvalData
from .keras_files import load_keras_model, sha256_file
from .keras_source import resolve_source
from .runtime.spec import InputSpec
from .runtime.transforms import Pipeline

RANDOM_SAMPLE = 256


def read_labels_file(path: Path) -> tuple[str, ...]:
    if not path.is_file():
        raise ExportError(f"{path}: labels file not found")
    labels = tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
    if not labels:
        raise ExportError(f"{path}: labels file is empty (expected one class name per line)")
    return labels


@dataclass
class ExportData:
    """The images of one export: validation, int8 calibration, the unsure flag's calibration."""

    evaluation: EvalData
    calibration: Optional[Images]
    unsure: Optional[Images]
    labels: tuple[str, ...]
    quant: QuantOptions
    notes: list[str] = field(default_factory=list)


def prepare_job(
    target: str,
    *,
    variants: tuple[str, ...],
    workspace: Optional[config.PathLike] = None,
    data_dir: Optional[config.PathLike] = None,
    calib_data: Optional[Path] = None,
    eval_data: Optional[Path] = None,
    labels_file: Optional[Path] = None,
    eval_limit: Optional[int] = None,
    out_dir: Optional[Path] = None,
    quant: QuantOptions = QuantOptions(),
    gates: Gates = Gates(),
    opset: int = 17,
    preprocess: Optional[str] = None,
    image_size: Optional[tuple[int, int]] = None,
    head: Optional[str] = None,
    custom_objects: Optional[str] = None,
    unsafe: bool = False,
) -> tuple[ExportJob, list[str]]:
    """Build the export job for a model name (its model.keras, workspace first, then the zoo) or a .keras path.

    image_size: for models taking any size; head: output kind override (runtime.heads); custom_objects:
    a .py file or module defining the user's custom classes; unsafe: load Lambda layers' code."""
    from .exporters.convert import image_input_spec

    source = resolve_source(target, workspace)
    objects = None
    if custom_objects:
        from .custom_objects import import_custom_objects

        objects = import_custom_objects(custom_objects)
    model = load_keras_model(source.keras_path, objects, unsafe)
    spec = image_input_spec(model, image_size)
    pipeline = declared_pipeline(source.name, source.card, preprocess)
    notes = ["--unsafe: loaded with Keras safe_mode off (Lambda code from the file ran)"] if unsafe else []
    if pipeline.declared:
        notes.append(f"preprocessing: {pipeline}")
    labels = read_labels_file(labels_file) if labels_file is not None else \
        (source.card.classes if source.card is not None else ())
    wants_static = "int8" in variants and quant.mode != "dynamic"
    data = export_data(source.card, spec, pipeline, labels, quant, wants_static, calib_data=calib_data,
                       eval_data=eval_data, eval_limit=eval_limit, data_dir=data_dir, preprocess=preprocess)
    if not data.labels:
        raise ExportError(f"{source.keras_path}: no class labels; give --labels labels.txt or a labelled --calib-data "
                          "folder")
    if wants_static and data.calibration is None:
        raise ExportError("int8 needs calibration images: give --calib-data folder/<class>/*.png")
    card = source.card
    job = ExportJob(
        model=model, name=source.name, labels=data.labels, out_dir=Path(out_dir or source.output_dir),
        eval_data=data.evaluation, calib_pixels=None if data.calibration is None else data.calibration.x,
        dataset=card.dataset if card else (str(calib_data) if calib_data else ""),
        source_sha256=sha256_file(source.keras_path), variants=variants, quant=data.quant, gates=gates, opset=opset,
        preprocess=tuple(pipeline.to_list()), head=head, image_size=image_size,
        unsure=None if data.unsure is None else UnsureData(
            data.unsure.x, data.unsure.description, data.unsure.stats,
            (card.unsure_statistic if card else None) or _zoo_attr(source.name, "unsure_statistic")),
    )
    return job, notes + data.notes


def export_data(card: Optional[ModelCard], spec: InputSpec, pipeline: Pipeline, labels: tuple[str, ...],
                quant: QuantOptions, wants_static: bool, *, calib_data: Optional[Path], eval_data: Optional[Path],
                eval_limit: Optional[int], data_dir: Optional[config.PathLike],
                preprocess: Optional[str] = None) -> ExportData:
    """Which images validate, calibrate int8 and calibrate the unsure flag: the folders the user gave, else
    the model's data plan; with only a calibration folder, at most half of it calibrates and int8 is scored
    on the rest; with nothing, random pixels (agreement and differences only)."""
    notes: list[str] = []
    given = _folder_images(calib_data, spec, labels, pipeline, notes) if calib_data is not None else None
    labels = labels or (given.labels if given else ())
    calib = given.images if given else None
    plan = DataPlan.for_card(card, data_dir=data_dir, preprocess=preprocess) if card is not None else None
    if eval_data is not None:  # its test/ part when it is split into train/ and test/
        test = DataPlan(None, spec, pipeline, folder=eval_data, labels=labels).test()
        evaluation = EvalData(test.x, test.y, test.description, test.stats)
        unsure = calib  # the calibration folder: held apart from the validation folder
        return ExportData(evaluation, _calibration(calib, plan, quant, wants_static), unsure, labels, quant, notes)
    if plan is not None:
        test = plan.test(eval_limit, quant.seed)
        return ExportData(EvalData(test.x, test.y, test.description, test.stats),
                          _calibration(calib, plan, quant, wants_static), plan.heldout(), labels, quant, notes)
    if calib is not None:
        evaluation = EvalData(calib.x, calib.y, f"{calib_data} ({len(calib)} images; int8 is scored on those not "
                              "used to calibrate)", calib.stats)
        if wants_static and quant.calib_size > len(calib) // 2:
            quant = dataclasses.replace(quant, calib_size=max(1, len(calib) // 2))
            notes.append(f"calibrating int8 on {quant.calib_size} of the {len(calib)} images in {calib_data}; "
                         "the others validate it (give --eval-data to validate on a separate folder)")
        return ExportData(evaluation, _sample(calib, quant), None, labels, quant, notes)
    rng = np.random.default_rng(quant.seed)
    evaluation = EvalData(rng.integers(0, 256, (RANDOM_SAMPLE, *spec.shape), dtype=np.uint8), None,
                          f"{RANDOM_SAMPLE} random images (no data given: agreement and differences only)")
    notes.append("no labelled data: validated on random pixels (give --eval-data for accuracy)")
    return ExportData(evaluation, None, None, labels, quant, notes)


@dataclass
class _Folder:
    images: Images
    labels: tuple[str, ...]


def _folder_images(folder: Path, spec: InputSpec, labels: tuple[str, ...], pipeline: Pipeline,
                   notes: list[str]) -> _Folder:
    """Every image of a labelled folder, model-ready; unreadable files become notes."""
    from .data.folders import read_labelled_folder

    split, found, skipped = read_labelled_folder(folder, spec, labels or None, pipeline)
    notes += [f"skipped {s}" for s in skipped]
    if split.stats is None and pipeline.declared:
        x, stats = pipeline.apply(split.x, (spec.height, spec.width))
        split = dataclasses.replace(split, x=x, stats=stats)
    return _Folder(Images(split.x, split.y, f"{folder} ({len(split)} images)", split.stats), labels or found)


def _calibration(given: Optional[Images], plan: Optional[DataPlan], quant: QuantOptions,
                 wants_static: bool) -> Optional[Images]:
    """int8 calibration images: a sample of the folder the user gave, else of the model's training data (when
    static int8 is asked for); None when neither is there (then --calib-data is asked for)."""
    if given is not None:
        return _sample(given, quant)
    if plan is None or not wants_static:
        return None
    try:
        return plan.calibration(quant.calib_size, quant.seed)
    except DataError:
        return None


def _sample(images: Images, quant: QuantOptions) -> Images:
    """A stratified sample of quant.calib_size calibration images."""
    pick = stratified_sample(images.y, len(images), quant.calib_size, quant.seed)
    return Images(images.x[pick], None if images.y is None else images.y[pick], images.description,
                  None if images.stats is None else {k: v[pick] for k, v in images.stats.items()})


def _zoo_attr(name: str, attr: str) -> Any:
    from .zoo import MODELS

    spec = MODELS.get(name)
    return getattr(spec, attr) if spec is not None else None


def validation_reference(onnx_path: Path, keras_path: Optional[Path],
                         workspace: Optional[config.PathLike]) -> Optional[Reference]:
    """What an exported file is validated against: its Keras source (--keras, the model.keras beside it, else its
    model name's; checked by sha256), else the fp32 .onnx exported with it; None when neither is at hand."""
    from .exporters.reference import KerasReference, OnnxReference
    from .runtime.metadata import read_info
    from .runtime.store import locate, model_folder

    info = read_info(onnx_path)
    if keras_path is None:
        beside = onnx_path.parent / "model.keras"
        keras_path = beside if beside.is_file() else model_folder(info.name, workspace).keras_path
    keras_path = Path(keras_path)
    if keras_path.is_file():
        if info.source_sha256 and sha256_file(keras_path) != info.source_sha256:
            raise ExportError(f"{onnx_path}: was exported from a different Keras model than {keras_path} "
                              "(sha256 differs); re-export it or give the right --keras")
        return KerasReference(load_keras_model(keras_path), None, info.output)
    fp32 = locate(onnx_path).folder.variant_path("fp32")
    if info.variant != "fp32" and fp32.is_file() and read_info(fp32).source_sha256 == info.source_sha256:
        return OnnxReference.from_file(fp32)
    return None


def validation_images(onnx_path: Path, eval_data: Optional[Path], eval_limit: Optional[int],
                      workspace: Optional[config.PathLike], data_dir: Optional[config.PathLike]) -> EvalData:
    """The labelled images to validate an exported file on: `eval_data`, else its model's held-out test split."""
    from .runtime.metadata import read_info

    info = read_info(onnx_path)
    test = plan_for_onnx(onnx_path, info, folder=eval_data, data_dir=data_dir, workspace=workspace).test(eval_limit)
    return EvalData(test.x, test.y, test.description, test.stats)
