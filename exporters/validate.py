"""Compare an exported variant with the Keras model it came from, and apply the release gates."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional

import numpy as np


@dataclass(frozen=True)
class Gates:
    """Defaults: fp32 must be the same model; fp16/int8 may cost at most a little accuracy AND must keep
    answering like the model (top-1 agreement), so a variant cannot pass on accuracy alone."""

    fp32_min_agreement: float = 1.0  # top-1 agreement with Keras (fraction)
    fp32_max_abs_diff: float = 1e-4  # on the per-label scores
    fp16_max_accuracy_drop: float = 0.1  # percentage points vs Keras
    int8_max_accuracy_drop: float = 0.5  # percentage points vs Keras
    unlabelled_min_agreement: float = 0.99  # quantized variants, when there are no labels to score accuracy
    fp16_min_agreement: float = 0.99  # top-1 agreement with Keras, labelled or not
    int8_min_agreement: float = 0.93  # top-1 agreement with Keras, labelled or not (shipped emotion int8: 94%)
    int8_max_size_ratio: float = 0.6  # an int8 file larger than this share of fp32 is not worth shipping

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class GateFailure:
    """Why a variant must not ship: which gate (fp32_agreement, max_abs_diff, accuracy_drop, agreement,
    size, build, onnx_check, runtime, disjoint_data), the measured value and the limit."""

    gate: str
    message: str
    measured: Optional[float] = None
    limit: Optional[float] = None

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(reference: np.ndarray, probs: np.ndarray, labels: Optional[np.ndarray]) -> dict[str, Any]:
    """Differences of `probs` from the Keras `reference` scores (both per label), and accuracies when labelled."""
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


def check_gates(variant: str, result: dict[str, Any], gates: Gates) -> list[GateFailure]:
    """Typed reasons this variant must not ship; empty when it passes."""
    failures = []
    agreement = result["top1_agreement"]
    if variant == "fp32":
        if agreement < gates.fp32_min_agreement:
            failures.append(GateFailure("fp32_agreement", f"top-1 agreement {agreement * 100:.3f}% < "
                                        f"{gates.fp32_min_agreement * 100:.3f}%", agreement, gates.fp32_min_agreement))
        if result["max_abs_diff"] > gates.fp32_max_abs_diff:
            failures.append(GateFailure("max_abs_diff", f"max abs diff {result['max_abs_diff']:.2e} > "
                                        f"{gates.fp32_max_abs_diff:.0e}", result["max_abs_diff"], gates.fp32_max_abs_diff))
        return failures
    limit = gates.fp16_max_accuracy_drop if variant == "fp16" else gates.int8_max_accuracy_drop
    min_agreement = gates.fp16_min_agreement if variant == "fp16" else gates.int8_min_agreement
    if "accuracy_drop_pts" in result:
        if result["accuracy_drop_pts"] > limit:
            failures.append(GateFailure("accuracy_drop", f"accuracy drop {result['accuracy_drop_pts']:.2f} pt > {limit} pt",
                                        result["accuracy_drop_pts"], limit))
    else:
        min_agreement = max(min_agreement, gates.unlabelled_min_agreement)
    if agreement < min_agreement:
        why = "" if "accuracy_drop_pts" in result else " (no labels to score accuracy)"
        failures.append(GateFailure("agreement", f"top-1 agreement {agreement * 100:.2f}% < {min_agreement * 100:.2f}%{why}",
                                    agreement, min_agreement))
    return failures


def gate_failures(variant: str, result: dict[str, Any], gates: Gates) -> list[str]:
    """Human-readable reasons this variant must not ship; empty when it passes."""
    return [str(f) for f in check_gates(variant, result, gates)]
