"""Evaluate a trained Keras model on its data set's official test split (or a labelled folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from . import config
from .artifacts import ModelArtifacts, load_keras_model
from .errors import ModelNotFoundError
from .runtime.metrics import classification_report
from .data.types import preprocess_split
from .exporting import declared_pipeline
from .runtime.spec import InputSpec
from .runtime.transforms import Pipeline


def evaluate_artifact(
    artifacts: ModelArtifacts,
    data_dir: Optional[config.PathLike] = None,
    folder: Optional[Path] = None,
) -> dict[str, Any]:
    """Accuracy and per-class metrics of artifacts/<name>/model.keras, with the recorded figure beside it."""
    from .data import load_dataset, load_image_folder
    from .exporters.reference import keras_probabilities

    card = artifacts.read_card()
    if card is None or not artifacts.keras_path.is_file():
        raise ModelNotFoundError(
            f"no trained model at {artifacts.directory} (expected model.keras and metrics.json); "
            f"train it with `edgecls train {artifacts.name}`")
    spec = InputSpec.from_dict(card["input_spec"])
    pipeline = declared_pipeline(artifacts.name, card, None)
    # Score what users get: images as the model's declared preprocessing makes them.
    if folder is not None:
        test = load_image_folder(folder, spec, pipeline=pipeline).test if (folder / "test").is_dir() \
            else _whole_folder(folder, spec, card, pipeline)
        source = str(folder)
    else:
        dataset = load_dataset(card["dataset"], data_dir)
        test, source = preprocess_split(dataset.test, spec, pipeline), dataset.source
    model = load_keras_model(artifacts.keras_path)
    probs = keras_probabilities(model, test.x)
    report = classification_report(test.y, probs.argmax(axis=1), card["classes"])
    return {
        "model": artifacts.name,
        "dataset": card["dataset"] if folder is None else source,
        "split": card["test"]["split"] if folder is None else "folder",
        "recorded_accuracy": card["test"]["accuracy"] if folder is None else None,
        **report,
    }


def _whole_folder(folder: Path, spec: InputSpec, card: dict[str, Any], pipeline: Pipeline):
    """A labelled folder without train/test: every image is test data, classes matched by name."""
    from .data.folders import read_labelled_images

    skipped: list[str] = []
    return read_labelled_images(folder, list(card["classes"]), spec, skipped, pipeline)
