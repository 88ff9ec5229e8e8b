"""Toolkit side of export: find the Keras model and the data, then hand a job to edgecls.exporters."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Optional

import numpy as np

from . import config
from .artifacts import ModelArtifacts, load_keras_model, resolve_source, sha256_file
from .errors import DataError, ModelNotFoundError
from .exporters.errors import ExportError
from .exporters.export import EvalData, ExportJob
from .exporters.quantize import QuantOptions, stratified_sample
from .exporters.validate import Gates
from .data.types import limit_split, preprocess_split, stratified_holdout
from .runtime.spec import InputSpec
from .runtime.transforms import Pipeline, preset_or_steps

RANDOM_SAMPLE = 256


def read_labels_file(path: Path) -> tuple[str, ...]:
    if not path.is_file():
        raise ExportError(f"{path}: labels file not found")
    labels = tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
    if not labels:
        raise ExportError(f"{path}: labels file is empty (expected one class name per line)")
    return labels


def read_labelled_folder(folder: Path, spec: InputSpec, classes: Optional[tuple[str, ...]] = None,
                         pipeline: Optional[Pipeline] = None):
    """All images of `folder/<class>/`; raises a clear error for a missing, empty or unlabelled folder."""
    from .data.folders import read_labelled_images

    if not folder.is_dir():
        raise DataError(f"{folder}: not a directory")
    found = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")))
    if not found:
        loose = any(p.is_file() for p in folder.iterdir())
        raise DataError(f"{folder}: {'unlabelled images' if loose else 'empty folder'}; "
                        "put images in one sub-folder per class (folder/<class>/*.png)")
    classes = classes or found
    missing = [c for c in found if c not in classes]
    if missing:
        raise DataError(f"{folder}: sub-folders {missing} are not among the model's labels {list(classes)}")
    skipped: list[str] = []
    split = read_labelled_images(folder, list(classes), spec, skipped, pipeline)
    return split, classes, skipped


def prepare_job(
    target: str,
    *,
    variants: tuple[str, ...],
    artifacts: Optional[config.PathLike] = None,
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
    """Build the export job for a zoo name (artifacts/<name>/model.keras) or a path to a .keras file.

    image_size: for models taking any size; head: output kind override (runtime.heads); custom_objects:
    a .py file or module defining the user's custom classes; unsafe: load Lambda layers' code."""
    from .exporters.convert import image_input_spec

    notes: list[str] = []
    source = resolve_source(target, artifacts)
    keras_path, name, card, default_out = source.keras_path, source.name, source.card, source.output_dir
    objects = None
    if custom_objects:
        from .custom_objects import import_custom_objects

        objects = import_custom_objects(custom_objects)
    model = load_keras_model(keras_path, objects, unsafe)
    spec = image_input_spec(model, image_size)
    if unsafe:
        notes.append("--unsafe: loaded with Keras safe_mode off (Lambda code from the file ran)")

    pipeline = declared_pipeline(name, card, preprocess)
    if pipeline.declared:
        notes.append(f"preprocessing: {pipeline}")
    if labels_file is not None:
        labels = read_labels_file(labels_file)
    elif card is not None:
        labels = tuple(card["classes"])
    else:
        labels = ()

    calib_pixels = calib_labels = calib_stats = None
    calib_needs_pipeline = False  # data-set pixels are raw; folder images were prepared as they were read
    if calib_data is not None:
        split, found, skipped = read_labelled_folder(calib_data, spec, labels or None, pipeline)
        labels = labels or found
        notes += [f"skipped {s}" for s in skipped]
        calib_pixels, calib_labels, calib_stats = split.x, split.y, split.stats

    dataset_name = card["dataset"] if card else ""
    unsure_pixels, unsure_stats, unsure_what = None, None, ""
    if eval_data is not None:
        split, _, skipped = read_labelled_folder(eval_data, spec, labels or None, pipeline)
        notes += [f"skipped {s}" for s in skipped]
        evaluation = EvalData(split.x, split.y, f"{eval_data} ({len(split)} images)", split.stats)
        if calib_pixels is not None:
            unsure_pixels, unsure_stats = calib_pixels, calib_stats
            unsure_what = f"{calib_data} (the calibration images)"
        elif card is not None and "int8" in variants and quant.mode != "dynamic":
            calib_pixels, calib_labels, ready = _card_training_images(card, data_dir, pipeline)  # None: data gone
            calib_needs_pipeline = calib_pixels is not None and pipeline.declared and not ready
    elif card is not None:
        from .data.recorded import card_dataset, describe_source

        dataset = card_dataset(card, data_dir, pipeline)
        test = limit_split(dataset.test, eval_limit, quant.seed)
        what = f"{describe_source(card)} {card['test']['split']}"
        if len(test) < len(dataset.test):
            what += f", stratified sample of {len(test)}"
        shape = (spec.height, spec.width)
        test_x, test_stats = _model_ready(test, pipeline, shape)
        evaluation = EvalData(test_x, test.y, f"{what} ({len(test)} images)", test_stats)
        held_out = heldout_split(dataset, name, card)
        unsure_pixels, unsure_stats = _model_ready(held_out, pipeline, shape)
        unsure_what = f"{describe_source(card)} held-out validation images ({len(held_out)})"
        if calib_pixels is None:
            calib_pixels, calib_labels = dataset.train.x, dataset.train.y
            calib_needs_pipeline = pipeline.declared and dataset.train.stats is None
    elif calib_pixels is not None:
        # One folder for both: int8 is validated on images it was not calibrated on, so calibration takes at
        # most half of them (stratified) and the exporter scores int8 on the rest only.
        evaluation = EvalData(calib_pixels, calib_labels, f"{calib_data} ({len(calib_pixels)} images; int8 is "
                              "scored on those not used to calibrate)", calib_stats)
        if "int8" in variants and quant.calib_size > len(calib_pixels) // 2:
            quant = dataclasses.replace(quant, calib_size=max(1, len(calib_pixels) // 2))
            notes.append(f"calibrating int8 on {quant.calib_size} of the {len(calib_pixels)} images in {calib_data}; "
                         "the others validate it (give --eval-data to validate on a separate folder)")
    else:
        rng = np.random.default_rng(quant.seed)
        evaluation = EvalData(rng.integers(0, 256, (RANDOM_SAMPLE, *spec.shape), dtype=np.uint8), None,
                              f"{RANDOM_SAMPLE} random images (no data given: agreement and differences only)")
        notes.append("no labelled data: validated on random pixels (give --eval-data for accuracy)")
    if not labels:
        raise ExportError(f"{keras_path}: no class labels; give --labels labels.txt or a labelled --calib-data folder")
    if "int8" in variants and quant.mode != "dynamic" and calib_pixels is None:
        raise ExportError("int8 needs calibration images: give --calib-data folder/<class>/*.png")
    if calib_pixels is not None:
        pick = stratified_sample(calib_labels, len(calib_pixels), quant.calib_size, quant.seed)
        calib_pixels = calib_pixels[pick]
        if calib_needs_pipeline:
            calib_pixels = pipeline(calib_pixels, (spec.height, spec.width))

    job = ExportJob(
        model=model, name=name, labels=labels, out_dir=Path(out_dir or default_out), eval_data=evaluation,
        calib_pixels=calib_pixels, dataset=dataset_name or (str(calib_data) if calib_data else ""),
        source_sha256=sha256_file(keras_path), variants=variants, quant=quant, gates=gates, opset=opset,
        preprocess=tuple(pipeline.to_list()), unsure_pixels=unsure_pixels, unsure_stats=unsure_stats,
        unsure_description=unsure_what,
        unsure_statistic=(card or {}).get("unsure_statistic") or _zoo_attr(name, "unsure_statistic"),
        head=head, image_size=image_size,
    )
    return job, notes


def _card_training_images(card: dict[str, Any], data_dir: Optional[config.PathLike],
                          pipeline: Pipeline) -> tuple[Any, Any, bool]:
    """The training images the model card records (pixels, labels, and whether they are model-ready: a
    folder is read through the pipeline as training read it), to calibrate int8 when only the validation
    folder was given; (None, None, False) when that data is not there (then --calib-data is asked for)."""
    from .data.recorded import card_dataset

    try:
        train = card_dataset(card, data_dir, pipeline).train
    except DataError:
        return None, None, False
    return train.x, train.y, train.stats is not None


def _model_ready(split: Any, pipeline: Pipeline, shape: tuple[int, int]) -> tuple[Any, Any]:
    """(pixels, stats) as the model sees them; a split read through the pipeline already keeps its own."""
    if split.stats is not None or not pipeline.declared:
        return split.x, split.stats
    return pipeline.apply(split.x, shape)


def _zoo_attr(name: str, attr: str) -> Any:
    from .zoo import MODELS

    spec = MODELS.get(name)
    return getattr(spec, attr) if spec is not None else None


def declared_pipeline(name: str, card: Optional[dict[str, Any]], override: Optional[str]) -> Pipeline:
    """--preprocess, else what the model was trained with (its card), else the zoo's declaration, else none
    (stretch, as every model exported before declared preprocessing)."""
    if override:
        return preset_or_steps(override)
    if card is not None and "preprocess" in card:
        return Pipeline.parse(card["preprocess"] or None, f"{name} model card")
    return Pipeline.parse(_zoo_attr(name, "preprocess") or None, name)


def heldout_split(dataset: Any, name: str, card: dict[str, Any]) -> Any:
    """The images training held out for model selection (official validation split, or the same seeded
    stratified share of train): never trained on, never used to score the export."""
    if dataset.val is not None:
        return dataset.val
    recipe = _zoo_attr(card.get("name", name), "train")
    fraction = (card.get("data") or {}).get("val_fraction") or (recipe.val_fraction if recipe is not None else 0.1)
    seed = int(card.get("training", {}).get("seed", 1337))
    _, hold = stratified_holdout(dataset.train.y, fraction, seed)
    return dataset.train.take(hold)


def revalidation_inputs(onnx_path: Path, keras_path: Optional[Path], eval_data: Optional[Path],
                        eval_limit: Optional[int], artifacts: Optional[config.PathLike],
                        data_dir: Optional[config.PathLike]) -> tuple[Any, EvalData]:
    """The Keras model an exported file came from (checked by sha256) and the data to validate on."""
    from .runtime.metadata import ModelInfo
    from .runtime.session import create_session

    info = ModelInfo.from_metadata(create_session(onnx_path, "cpu").get_modelmeta().custom_metadata_map,
                                   str(onnx_path))
    card = _card_for(onnx_path, info.name, artifacts)
    if keras_path is None:
        beside = onnx_path.parent / "model.keras"
        keras_path = beside if beside.is_file() else ModelArtifacts.for_name(info.name, artifacts).keras_path
    keras_path = Path(keras_path)
    if not keras_path.is_file():
        raise ModelNotFoundError(f"{onnx_path}: its Keras source is not at {keras_path}; give --keras")
    if info.source_sha256 and sha256_file(keras_path) != info.source_sha256:
        raise ExportError(f"{onnx_path}: was exported from a different Keras model than {keras_path} "
                          "(sha256 differs); re-export it or give the right --keras")
    model = load_keras_model(keras_path)
    spec = InputSpec(info.input_spec.height, info.input_spec.width, info.input_spec.channels)
    pipeline = Pipeline.parse(info.preprocess or None, str(onnx_path))
    if eval_data is not None:
        from .data.recorded import folder_test_split

        split = folder_test_split(eval_data, list(info.labels), spec, pipeline)
        return model, EvalData(split.x, split.y, f"{eval_data} ({len(split)} images)")
    from .data import DATASETS, load_dataset
    from .data.recorded import card_test_split

    if card is not None and card.get("dataset") == info.dataset and card.get("data"):
        full, what = card_test_split(card, data_dir, pipeline)
    elif not info.dataset:
        raise DataError(f"{onnx_path}: no training data set recorded; give --data folder/<class>/")
    elif info.dataset not in DATASETS:
        raise DataError(f"{onnx_path}: trained on {info.dataset!r}, and no model card beside it or in the workspace "
                        "says where that data is; give --data folder/<class>/")
    else:
        full, what = load_dataset(info.dataset, data_dir).test, f"{info.dataset} test"
    test = limit_split(full, eval_limit, 1337)
    what += ", stratified sample" if len(test) < len(full) else ""
    test = preprocess_split(test, spec, pipeline)
    return model, EvalData(test.x, test.y, f"{what} ({len(test)} images)")


def _card_for(onnx_path: Path, name: str, artifacts: Optional[config.PathLike]) -> Optional[dict[str, Any]]:
    """The model card of an exported file: the one beside it, else the one of its model name."""
    import json

    from .runtime.metadata import ModelInfo
    from .runtime.session import create_session

    beside = onnx_path.parent / "metrics.json"
    card = json.loads(beside.read_text()) if beside.is_file() else \
        ModelArtifacts.for_name(name, artifacts).read_card() if name else None
    if card is None:
        return None
    source = ModelInfo.from_metadata(create_session(onnx_path, "cpu").get_modelmeta().custom_metadata_map,
                                     str(onnx_path)).source_sha256
    # another model that happens to share the name is not this file's card
    return card if not (source and card.get("sha256")) or source == card["sha256"] else None
