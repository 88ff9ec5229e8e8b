"""From per-label scores to answers: `Prediction`, and the decoder every consumer shares (Classifier.predict,
folder inference, serving, Ray), so the label, top-k and unsure flag of an image never depend on how it ran."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np

from .heads import DEFAULT_THRESHOLD, MULTILABEL
from .unsure import UnsureRule


@dataclass(slots=True)
class Prediction:
    label: str
    index: int
    score: float  # probability of the top class
    top_k: tuple[tuple[str, float], ...]  # best first
    probabilities: np.ndarray  # score per label (multi-label heads: independent sigmoids)
    unsure: bool = False  # out of the model's distribution or too ambiguous to trust (calibrated at export)
    labels: tuple[str, ...] = ()  # every label that applies: multi-label heads, those over the threshold;
    # otherwise the one predicted label


def cap_top_k(top_k: int, labels: Sequence[str]) -> int:
    """The k of top-k a model can answer: at least 1, at most its number of labels."""
    return max(1, min(int(top_k), len(labels)))


class Decoder:
    """(N, labels) scores -> Predictions, for one model's labels, head and unsure rule."""

    def __init__(self, labels: Sequence[str], output: str, unsure: Optional[UnsureRule]) -> None:
        self.labels, self.multilabel, self.unsure = tuple(labels), output in MULTILABEL, unsure

    def __call__(self, probabilities: np.ndarray, top_k: int = 1, pixels: Optional[np.ndarray] = None,
                 stats: Optional[Mapping[str, np.ndarray]] = None,
                 threshold: float = DEFAULT_THRESHOLD) -> list[Prediction]:
        labels, k = self.labels, cap_top_k(top_k, self.labels)
        best_score = probabilities.max(axis=1)  # argmax picks a column holding the maximum
        unsure = self.unsure.flags(probabilities, pixels, stats, best_score).tolist() if self.unsure else \
            [False] * len(probabilities)
        if k == 1 and not self.multilabel:  # the common case, vectorised: once per image in folder inference
            best = probabilities.argmax(axis=1).tolist()
            return [Prediction(labels[i], i, s, ((labels[i], s),), row, u, (labels[i],))
                    for i, s, row, u in zip(best, best_score.tolist(), probabilities, unsure)]
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
        out = []
        for row, best, u in zip(probabilities, order.tolist(), unsure):
            top = tuple((labels[i], float(row[i])) for i in best)
            active = tuple(labels[i] for i in np.flatnonzero(row >= threshold)) if self.multilabel else (top[0][0],)
            out.append(Prediction(top[0][0], best[0], top[0][1], top, row, u, active))
        return out
