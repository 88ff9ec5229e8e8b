"""The release gates: each variant is judged only on what its validation sample can show.

- **Output error**: each image's largest score difference from the reference; a quantized variant's output error
  is its 99th percentile over the images (fp32: the maximum, which its gate bounds).
- **Flips**: a top-1 answer that changed counts only where the reference's top-two margin is larger than the
  output error; below that the two classes were a near tie the variant's ordinary error can reorder.
- **Accuracy drop** (labelled images): refused only when the sample shows a drop (its exact interval lies above
  zero, `stats.paired_drop`) and the drop exceeds the limit. A sample too small to show a drop of the limit's
  size says so, and the variant is then judged on output error and flips.

Every failure names the figure, the limit and the sample size; a pass on a sample too small to check the accuracy
limit carries a note that says how small it was.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional

import numpy as np

from .stats import CONFIDENCE, paired_drop

# Which share of the images' errors a variant's output error covers (see the module docstring).
ERROR_QUANTILE = {"fp32": 1.0, "fp16": 0.99, "int8": 0.99}


@dataclass(frozen=True)
class Gates:
    """Defaults: fp32 must be the same model; fp16/int8 may cost at most a little accuracy AND must keep
    answering like the model (decisive top-1 agreement) with small output errors, so a variant cannot pass on
    accuracy alone."""

    fp32_min_agreement: float = 1.0  # decisive top-1 agreement with the reference (fraction)
    fp32_max_abs_diff: float = 1e-4  # on the per-label scores
    fp16_max_accuracy_drop: float = 0.1  # percentage points vs the reference, when the sample shows a drop
    int8_max_accuracy_drop: float = 0.5  # percentage points vs the reference, when the sample shows a drop
    unlabelled_min_agreement: float = 0.99  # quantized variants, when there are no labels to score accuracy
    fp16_min_agreement: float = 0.99  # decisive top-1 agreement with the reference, labelled or not
    int8_min_agreement: float = 0.93  # decisive top-1 agreement, labelled or not (shipped emotion int8: 99%)
    fp16_max_output_error: float = 0.01  # 99th percentile score difference (shipped fp16: <= 0.0015)
    int8_max_output_error: float = 0.1  # 99th percentile score difference (shipped int8: <= 0.033)
    int8_min_size_saving: float = 0.5  # share of the saving its quantized weights allow, net of Q/DQ overhead

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    def accuracy_limit(self, gate: str) -> float:
        return self.fp16_max_accuracy_drop if gate == "fp16" else self.int8_max_accuracy_drop

    def min_agreement(self, gate: str, labelled: bool) -> float:
        if gate == "fp32":
            return self.fp32_min_agreement
        floor = self.fp16_min_agreement if gate == "fp16" else self.int8_min_agreement
        return floor if labelled else max(floor, self.unlabelled_min_agreement)

    def output_error_limit(self, gate: str) -> float:
        return {"fp32": self.fp32_max_abs_diff, "fp16": self.fp16_max_output_error}.get(gate, self.int8_max_output_error)


@dataclass(frozen=True)
class GateFailure:
    """Why a variant must not ship: which gate (fp32_agreement, max_abs_diff, output_error, accuracy_drop,
    agreement, size, build, onnx_check, runtime, disjoint_data), the measured value and the limit."""

    gate: str
    message: str
    measured: Optional[float] = None
    limit: Optional[float] = None

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Verdict:
    """What the gates decided about one variant: failures (empty: it passes) and notes on how it was judged."""

    failures: list[GateFailure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def compare(reference: np.ndarray, scores: np.ndarray, labels: Optional[np.ndarray], error_quantile: float = 0.99,
            confidence: float = CONFIDENCE) -> dict[str, Any]:
    """How `scores` differ from the `reference` scores (both per label): differences, output error, flips
    (all, and decisive ones), and when labelled the accuracies and the paired accuracy drop with its interval."""
    if reference.shape != scores.shape:
        raise ValueError(f"output shapes differ: reference {reference.shape}, variant {scores.shape}")
    diff = np.abs(reference.astype(np.float64) - scores.astype(np.float64))
    per_image = diff.max(axis=1) if diff.size else np.zeros(len(reference))
    error = float(np.quantile(per_image, error_quantile)) if len(per_image) else 0.0
    n = len(reference)
    flipped = reference.argmax(1) != scores.argmax(1) if n else np.zeros(0, bool)
    top2 = np.sort(reference, axis=1)[:, -2:] if reference.shape[1] > 1 else np.zeros((n, 2))
    decisive = flipped & (top2[:, 1] - top2[:, 0] > error)
    result: dict[str, Any] = {
        "samples": int(n),
        "top1_agreement": (n - int(flipped.sum())) / n if n else float("nan"),  # from counts: 930/1000 is 0.93
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
        "output_error": error,
        "output_error_quantile": error_quantile,
        "flips": int(flipped.sum()),
        "decisive_flips": int(decisive.sum()),
        "decisive_agreement": (n - int(decisive.sum())) / n if n else float("nan"),
    }
    if labels is not None:
        reference_right, right = reference.argmax(1) == labels, scores.argmax(1) == labels
        drop = paired_drop(reference_right, right, confidence)
        result.update({"keras_accuracy": float(reference_right.mean()), "accuracy": float(right.mean()),
                       "accuracy_drop_pts": drop.drop_pts, "accuracy_drop_ci_pts": [drop.low_pts, drop.high_pts],
                       "accuracy_drop_measurable": drop.measurable, "lost": drop.lost, "gained": drop.gained,
                       "resolvable_drop_pts": drop.resolvable_pts, "confidence": confidence})
    return result


def judge(gate: str, result: dict[str, Any], gates: Gates) -> Verdict:
    """Apply the gates of family `gate` (fp32 | fp16 | int8) to a `compare` result."""
    verdict = Verdict()
    n, error = result["samples"], result.get("output_error", result["max_abs_diff"])
    labelled = "accuracy_drop_pts" in result
    _judge_flips(gate, result, gates, labelled, verdict)
    if gate == "fp32":
        if result["max_abs_diff"] > gates.fp32_max_abs_diff:
            verdict.failures.append(GateFailure("max_abs_diff", f"max abs diff {result['max_abs_diff']:.2e} > "
                                                f"{gates.fp32_max_abs_diff:.0e} on {n} images",
                                                result["max_abs_diff"], gates.fp32_max_abs_diff))
        return verdict
    limit = gates.output_error_limit(gate)
    if error > limit:
        verdict.failures.append(GateFailure(
            "output_error", f"output error {error:.3g} > {limit:g} on {n} images ({_quantile(result)} of each "
                            "image's largest score difference)", error, limit))
    if labelled:
        _judge_drop(result, gates.accuracy_limit(gate), verdict)
    else:
        verdict.notes.append(f"no labels: judged on output error and top-1 flips on {n} images")
    return verdict


def _quantile(result: dict[str, Any]) -> str:
    q = result.get("output_error_quantile", 1.0)
    return "maximum" if q >= 1 else f"{q * 100:g}th percentile"


def _judge_flips(gate: str, result: dict[str, Any], gates: Gates, labelled: bool, verdict: Verdict) -> None:
    n = result["samples"]
    agreement = result.get("decisive_agreement", result["top1_agreement"])
    decisive, flips = result.get("decisive_flips"), result.get("flips", 0)
    error = result.get("output_error", result["max_abs_diff"])
    floor = gates.min_agreement(gate, labelled)
    digits = 3 if gate == "fp32" else 2
    if agreement < floor:
        why = "" if labelled or gate == "fp32" else "; no labels to score accuracy"
        counted = "" if decisive is None else (f" ({decisive} flip(s) where the reference's top-two margin exceeds the "
                                               f"output error {error:.2g}{why})")
        verdict.failures.append(GateFailure(
            "fp32_agreement" if gate == "fp32" else "agreement",
            f"top-1 agreement {agreement * 100:.{digits}f}% < {floor * 100:.{digits}f}% on {n} images{counted}",
            agreement, floor))
    if decisive is not None and flips > decisive:
        verdict.notes.append(f"{flips - decisive} near-tie flip(s) of {n} not counted (the reference's top-two margin "
                             f"within the output error {error:.2g})")


def _judge_drop(result: dict[str, Any], limit: float, verdict: Verdict) -> None:
    n, drop = result["samples"], result["accuracy_drop_pts"]
    low, high = result.get("accuracy_drop_ci_pts", [drop, drop])
    measurable = result.get("accuracy_drop_measurable", True)
    resolvable = result.get("resolvable_drop_pts", 0.0)
    if measurable and drop > limit:
        verdict.failures.append(GateFailure(
            "accuracy_drop", f"accuracy drop {drop:.2f} pt > {limit:g} pt on {n} images ({result.get('confidence', 0.95):.0%} "
                             f"CI {low:.2f} to {high:.2f} pt: {result.get('lost')} lost, {result.get('gained')} gained)",
            drop, limit))
    elif resolvable > limit:
        verdict.notes.append(f"{n} images cannot show an accuracy drop smaller than {resolvable:.2g} pt (limit {limit:g} "
                             "pt): judged on output error and top-1 flips")


def check_gates(gate: str, result: dict[str, Any], gates: Gates) -> list[GateFailure]:
    """Typed reasons this variant must not ship; empty when it passes."""
    return judge(gate, result, gates).failures


def gate_failures(gate: str, result: dict[str, Any], gates: Gates) -> list[str]:
    """Human-readable reasons this variant must not ship; empty when it passes."""
    return [str(f) for f in check_gates(gate, result, gates)]
