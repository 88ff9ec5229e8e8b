"""Evaluate a trained model on its own held-out test split (or a labelled folder), and a bare ONNX file on a
labelled folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from . import config
from .artifacts import ModelArtifacts, load_keras_model
from .errors import DataError, ModelNotFoundError
from .runtime.metrics import classification_report
from .data.types import preprocess_split
from .exporting import declared_pipeline
from .runtime.spec import InputSpec


def evaluate_artifact(
    artifacts: ModelArtifacts,
    data_dir: Optional[config.PathLike] = None,
    folder: Optional[Path] = None,
) -> dict[str, Any]:
    """Accuracy and per-class metrics of <model>/model.keras on the test split its card records (the data set's
    official one, or the files training held out of the user's folder), with the recorded figure beside it;
    `folder` (--data) evaluates on a labelled folder instead."""
    from .data.recorded import card_test_split, describe_source, folder_test_split
    from .exporters.reference import keras_probabilities

    card = artifacts.read_card()
    if card is not None and not artifacts.keras_path.is_file():
        raise ModelNotFoundError(f"{artifacts.directory}: model.keras is missing beside metrics.json")
    if card is None:
        from .runtime.paths import did_you_mean, known_models

        hint = did_you_mean(artifacts.name, known_models(artifacts.directory.parent)) or f"; train it with `edgecls train {artifacts.name}`"
        raise ModelNotFoundError(f"no trained model at {artifacts.directory} (expected model.keras and metrics.json)"
                                 + hint)
    spec = InputSpec.from_dict(card["input_spec"])
    pipeline = declared_pipeline(artifacts.name, card, None)
    # Score what users get: images as the model's declared preprocessing makes them.
    if folder is not None:
        test = folder_test_split(folder, list(card["classes"]), spec, pipeline)
    else:
        raw, _ = card_test_split(card, data_dir, pipeline)
        test = preprocess_split(raw, spec, pipeline)
    model = load_keras_model(artifacts.keras_path)
    probs = keras_probabilities(model, test.x)
    report = classification_report(test.y, probs.argmax(axis=1), card["classes"])
    return {
        "model": artifacts.name,
        "dataset": describe_source(card) if folder is None else str(folder),
        "split": card["test"]["split"] if folder is None else "folder",
        "recorded_accuracy": card["test"]["accuracy"] if folder is None else None,
        **report,
    }


def evaluate_onnx(path: Path, folder: Optional[Path] = None, data_dir: Optional[config.PathLike] = None,
                  artifacts: Optional[config.PathLike] = None) -> dict[str, Any]:
    """Accuracy of an exported .onnx file, run by the runtime as users run it: on `folder` (--data), else on
    the held-out test split of the model card it came from, else on its reference data set's test split."""
    from .data.recorded import card_test_split, describe_source, folder_test_split
    from .exporting import _card_for
    from .runtime.classifier import Classifier
    from .runtime.transforms import Pipeline

    clf = Classifier(path, device="cpu")
    info = clf.info
    spec = InputSpec(info.input_spec.height, info.input_spec.width, info.input_spec.channels)
    pipeline = Pipeline.parse(info.preprocess or None, str(path))
    recorded = (info.validation or {}).get("accuracy")
    if folder is not None:
        test, dataset, split = folder_test_split(folder, list(info.labels), spec, pipeline), str(folder), "folder"
    else:
        card = _card_for(path, info.name, artifacts)
        from .data import DATASETS

        if card is not None and card.get("dataset") == info.dataset:
            raw, _ = card_test_split(card, data_dir, pipeline)
            dataset, split = describe_source(card), card["test"]["split"]
        elif info.dataset in DATASETS:
            from .data import load_dataset

            raw, dataset, split = load_dataset(info.dataset, data_dir).test, info.dataset, "test"
        else:
            raise DataError(f"{path}: no labelled data known for it (trained on {info.dataset or 'unknown data'!r}); "
                            "give --data folder/ with one sub-folder per class")
        test = preprocess_split(raw, spec, pipeline)
    probs = np.concatenate([clf.run(test.x[i : i + 256]) for i in range(0, len(test.x), 256)])
    report = classification_report(test.y, probs.argmax(axis=1), list(info.labels))
    return {"model": str(path), "dataset": dataset, "split": split,
            "recorded_accuracy": recorded if folder is None else None, **report}
