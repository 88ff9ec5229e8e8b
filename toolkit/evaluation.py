"""Evaluate a trained model on its own held-out test split (or a labelled folder), and an exported .onnx file
as the runtime runs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from . import config
from .card import read_card
from .data.plan import DataPlan, plan_for_onnx
from .errors import ModelNotFoundError
from .keras_files import load_keras_model
from .runtime.metrics import classification_report
from .runtime.store import ModelFolder, did_you_mean, known_models


def evaluate_model(folder: ModelFolder, data_dir: Optional[config.PathLike] = None,
                   data: Optional[Path] = None) -> dict[str, Any]:
    """Accuracy and per-class metrics of <model>/model.keras on the test split its card records, with the
    recorded figure beside it; `data` (--data) evaluates on a labelled folder instead."""
    from .exporters.reference import keras_probabilities

    if not folder.has_card():
        hint = did_you_mean(folder.name, known_models(folder.directory.parent)) or \
            f"; train it with `edgecls train {folder.name}`"
        raise ModelNotFoundError(f"no trained model at {folder.directory} (expected model.keras and metrics.json)"
                                 + hint)
    card = read_card(folder.card_path)
    if not folder.keras_path.is_file():
        raise ModelNotFoundError(f"{folder.directory}: model.keras is missing beside metrics.json")
    model = load_keras_model(folder.keras_path)  # first: a broken file or a missing train extra fails at once
    plan = DataPlan.for_card(card, folder=data, data_dir=data_dir)
    test = plan.test()  # scored as users get it: through the model's declared preprocessing
    probs = keras_probabilities(model, test.x)
    return _result(folder.name, plan, test, probs, card.test.split, card.test.accuracy, list(card.classes))


def evaluate_onnx(path: Path, data: Optional[Path] = None, data_dir: Optional[config.PathLike] = None,
                  workspace: Optional[config.PathLike] = None) -> dict[str, Any]:
    """Accuracy of an exported .onnx file, run by the runtime as users run it: on `data` (--data), else on the
    held-out test split of the model card it came from."""
    from .runtime.classifier import Classifier

    clf = Classifier(path, device="cpu")
    plan = plan_for_onnx(path, clf.info, folder=data, data_dir=data_dir, workspace=workspace)
    test = plan.test()
    probs = np.concatenate([clf.run(test.x[i : i + 256]) for i in range(0, len(test.x), 256)])
    split = plan.card.test.split if plan.card is not None and data is None else "folder"
    return _result(str(path), plan, test, probs, split, (clf.info.validation or {}).get("accuracy"),
                   list(clf.info.labels))


def _result(model: str, plan: DataPlan, test, probs: np.ndarray, split: str, recorded: Optional[float],
            classes: list[str]) -> dict[str, Any]:
    report = classification_report(test.y, probs.argmax(axis=1), classes)
    return {"model": model, "dataset": plan.source, "split": "folder" if plan.folder is not None else split,
            "recorded_accuracy": None if plan.folder is not None else recorded, **report}
