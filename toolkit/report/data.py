"""What the report's figures show, computed with numpy only (so it is testable on known cases)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..runtime.metrics import classification_report, confusion_matrix


@dataclass
class Mistake:
    index: int  # position in the test set
    true: int
    predicted: int
    confidence: float  # probability given to the wrong class


def worst_mistakes(probs: np.ndarray, labels: np.ndarray, n: int) -> list[Mistake]:
    """The n most confident wrong predictions, most confident first (ties: lower index first)."""
    pred = probs.argmax(1)
    wrong = np.flatnonzero(pred != labels)
    conf = probs[wrong, pred[wrong]]
    order = np.lexsort((wrong, -conf))[:n]
    return [Mistake(int(wrong[i]), int(labels[wrong[i]]), int(pred[wrong[i]]), float(conf[i])) for i in order]


def normalized_confusion(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows sum to 1 (recall per true class); an empty row stays zero."""
    cm = confusion_matrix(y_true, y_pred, num_classes).astype(np.float64)
    totals = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0)


def sample_grid(labels: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """Indices of `per_class` test images of every class, for the prediction grid."""
    rng = np.random.default_rng(seed)
    picks = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
    return np.concatenate(picks)


def per_class_table(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str]) -> dict:
    return classification_report(y_true, y_pred, classes)
