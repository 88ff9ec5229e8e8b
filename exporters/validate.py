"""Compare an exported variant with the Keras model it came from, and apply the release gates."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional

import numpy as np


@dataclass(frozen=True)
class Gates:
    """Defaults: fp32 must be the same model; int8 may cost at most half a point of accuracy."""

    fp32_min_agreement: float = 1.0  # top-1 agreement with Keras (fraction)
    fp32_max_abs_diff: float = 1e-4  # on probabilities
    fp16_max_accuracy_drop: float = 0.1  # percentage points vs Keras
    int8_max_accuracy_drop: float = 0.5  # percentage points vs Keras
    unlabelled_min_agreement: float = 0.99  # quantized variants, when there are no labels to score accuracy

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def compare(reference: np.ndarray, probs: np.ndarray, labels: Optional[np.ndarray]) -> dict[str, Any]:
    """Differences of `probs` from the Keras `reference` probabilities, and accuracies when labelled."""
    if reference.shape != probs.shape:
        raise ValueError(f"output shapes differ: Keras {reference.shape}, ONNX {probs.shape}")
    diff = np.abs(reference.astype(np.float64) - probs.astype(np.float64))
    result: dict[str, Any] = {
        "samples": int(len(reference)),
        "top1_agreement": float((reference.argmax(1) == probs.argmax(1)).mean()),
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
    }
    if labels is not None:
        n = len(labels)
        keras_correct = int((reference.argmax(1) == labels).sum())
        correct = int((probs.argmax(1) == labels).sum())
        result["keras_accuracy"] = keras_correct / n
        result["accuracy"] = correct / n
        # From counts, not from the two rounded accuracies: losing exactly 0.5 points must read 0.5, not 0.5000000000000004
        result["accuracy_drop_pts"] = (keras_correct - correct) * 100 / n
    return result


def gate_failures(variant: str, result: dict[str, Any], gates: Gates) -> list[str]:
    """Human-readable reasons this variant must not ship; empty when it passes."""
    failures = []
    if variant == "fp32":
        if result["top1_agreement"] < gates.fp32_min_agreement:
            failures.append(f"top-1 agreement {result['top1_agreement'] * 100:.3f}% < {gates.fp32_min_agreement * 100:.3f}%")
        if result["max_abs_diff"] > gates.fp32_max_abs_diff:
            failures.append(f"max abs diff {result['max_abs_diff']:.2e} > {gates.fp32_max_abs_diff:.0e}")
        return failures
    limit = gates.fp16_max_accuracy_drop if variant == "fp16" else gates.int8_max_accuracy_drop
    if "accuracy_drop_pts" in result:
        if result["accuracy_drop_pts"] > limit:
            failures.append(f"accuracy drop {result['accuracy_drop_pts']:.2f} pt > {limit} pt")
    elif result["top1_agreement"] < gates.unlabelled_min_agreement:
        failures.append(f"top-1 agreement {result['top1_agreement'] * 100:.2f}% < "
                        f"{gates.unlabelled_min_agreement * 100:.2f}% (no labels to score accuracy)")
    return failures
