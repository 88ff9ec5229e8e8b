"""What one model run gives each request: probabilities, the classes ranked, and the unsure flag.

Computed once per merged batch in the model's worker thread (one vectorised pass instead of one per request),
then sliced per request; the protocol encoders read the outputs they were asked for from here."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..runtime.classifier import Classifier


@dataclass(frozen=True)
class Scores:
    probabilities: np.ndarray  # (N, classes) float32
    ranked: np.ndarray  # (N, classes) class indices, best first (ties: lower index first, as argmax)
    unsure: np.ndarray  # (N,) bool

    @classmethod
    def of(cls, clf: Classifier, pixels: np.ndarray) -> "Scores":
        """Run `pixels` (N,H,W,C) through the model; the unsure flag uses the same rule as Classifier.decode."""
        probabilities = np.ascontiguousarray(clf.run(pixels), dtype=np.float32)
        ranked = np.argsort(-probabilities, axis=1, kind="stable")
        rule = clf.unsure_rule
        unsure = rule.flags(probabilities, pixels) if rule else np.zeros(len(probabilities), bool)
        return cls(probabilities, ranked, np.asarray(unsure, bool))

    def __len__(self) -> int:
        return len(self.probabilities)

    def __getitem__(self, rows: slice) -> "Scores":
        """The rows of one request (the batcher hands each request its slice)."""
        return Scores(self.probabilities[rows], self.ranked[rows], self.unsure[rows])

    def top_scores(self, k: int) -> np.ndarray:
        """(N, k) probabilities of the k best classes, best first."""
        return np.take_along_axis(self.probabilities, self.ranked[:, :k], axis=1)

    def top_labels(self, labels: tuple[str, ...], k: int) -> list[str]:
        """The k best labels per image, flat row-major."""
        return [labels[i] for i in self.ranked[:, :k].ravel().tolist()]
