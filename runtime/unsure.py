"""When a prediction should not be trusted: the `unsure` flag.

Two signals, each calibrated at export on held-out in-distribution images so that together they
flag about 1% of them:
- low confidence: the maximum softmax probability below a floor (Hendrycks & Gimpel, ICLR 2017),
  for inputs between classes;
- an input statistic of the model-ready pixels, for inputs unlike anything the model was trained on.
  Softmax confidence alone cannot catch those: a digit model answers photos with 99% confidence.
  `midtone_fraction` suits line-art models (digits, glyphs, garment silhouettes): strokes are solid
  ink with thin antialiased edges, while photos are mostly mid-tones.
A flat image (no contrast at all) carries no information and is always unsure.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping, Optional

import numpy as np

from .errors import EdgeclsError

FLAT_STD = 2.0  # grey levels: an image this uniform shows nothing


def midtone_fraction(pixels: np.ndarray, region: Optional[np.ndarray] = None) -> np.ndarray:
    """Share of the inked pixels (brighter than 15% of full scale) that are mid-tones (15-85%), per image,
    optionally only inside a boolean `region` of the same shape.

    An image with no ink at all scores 1.0 (nothing there to recognise)."""
    flat = pixels.reshape(len(pixels), -1)
    inked = flat > 38
    if region is not None:
        inked &= region.reshape(len(pixels), -1)
    ink = inked.sum(axis=1)
    mid = (inked & (flat < 217)).sum(axis=1)
    return np.divide(mid, ink, out=np.ones(len(flat)), where=ink > 0)


def is_flat(pixels: np.ndarray) -> np.ndarray:
    """Per image: standard deviation below FLAT_STD grey levels.

    The deviation is at least range / sqrt(2 n) (two pixels at the extremes, the rest at the mean), so only
    images whose range is small enough can be flat: the others skip the float pass over their pixels."""
    flat = pixels.reshape(len(pixels), -1)
    maybe = flat.max(axis=1) - flat.min(axis=1).astype(np.float64) < FLAT_STD * math.sqrt(2 * flat.shape[1])
    if not maybe.any():
        return maybe
    out = np.zeros(len(flat), bool)
    out[maybe] = flat[maybe].std(axis=1) < FLAT_STD
    return out


STATISTICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"midtone_fraction": midtone_fraction}


@dataclass(frozen=True)
class UnsureRule:
    min_confidence: float = 0.0  # flag when the top probability is below this
    statistic: Optional[str] = None  # name in STATISTICS, computed on model-ready uint8 pixels
    max_statistic: float = math.inf  # flag when the statistic is above this
    calibration: Optional[dict[str, Any]] = None  # how the thresholds were chosen (data, target rate)

    @classmethod
    def parse(cls, data: Mapping[str, Any] | None, source: str = "<model>") -> Optional["UnsureRule"]:
        """The model's calibrated rule; None for models exported without one (they never flag)."""
        if not data:
            return None
        if not isinstance(data, Mapping):
            raise EdgeclsError(f"{source}: metadata edgecls.unsure must be a JSON object")
        try:
            rule = cls(min_confidence=float(data.get("min_confidence", 0.0)), statistic=data.get("statistic"),
                       max_statistic=float(data.get("max_statistic", math.inf)), calibration=data.get("calibration"))
        except (TypeError, ValueError):
            raise EdgeclsError(f"{source}: metadata edgecls.unsure has non-numeric thresholds") from None
        if not 0.0 <= rule.min_confidence <= 1.0:
            raise EdgeclsError(f"{source}: edgecls.unsure min_confidence {rule.min_confidence} is not in 0..1")
        if rule.statistic is not None and rule.statistic not in STATISTICS:
            raise EdgeclsError(f"{source}: edgecls.unsure statistic {rule.statistic!r} is unknown; "
                               f"known: {', '.join(STATISTICS)}")
        return rule

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and v != math.inf}

    def flags(self, probabilities: np.ndarray, pixels: Optional[np.ndarray] = None,
              stats: Optional[Mapping[str, np.ndarray]] = None, top: Optional[np.ndarray] = None) -> np.ndarray:
        """Boolean per image. `stats`: statistics the preprocessing measured on the full-resolution image
        (preferred: thin strokes shrunk to 28x28 turn grey, the original does not); else they are computed
        on the model-ready `pixels`. Without either only the confidence signal applies. `top`: each row's
        largest probability, when the caller has it already."""
        unsure = (probabilities.max(axis=1) if top is None else top) < self.min_confidence
        if pixels is not None and len(pixels):
            unsure |= is_flat(pixels)
        if self.statistic is not None:
            value = stats.get(self.statistic) if stats else None
            if value is None and pixels is not None and len(pixels):
                value = STATISTICS[self.statistic](pixels)
            if value is not None:
                unsure |= np.asarray(value) > self.max_statistic
        return unsure


def calibrate(probabilities: np.ndarray, pixels: np.ndarray, statistic: Optional[str],
              target_rate: float = 0.01, description: str = "",
              stats: Optional[Mapping[str, np.ndarray]] = None) -> UnsureRule:
    """Thresholds that flag `target_rate` of these in-distribution images (split between the signals)."""
    if not 0.0 < target_rate < 1.0:
        raise ValueError(f"target rate must be in (0, 1), got {target_rate}")
    share = target_rate / 2 if statistic else target_rate
    floor = float(np.quantile(probabilities.max(axis=1), share))
    limit = math.inf
    if statistic:
        values = stats.get(statistic) if stats else None
        limit = float(np.quantile(STATISTICS[statistic](pixels) if values is None else values, 1.0 - share))
    rule = UnsureRule(floor, statistic, limit)
    rate = float(rule.flags(probabilities, pixels, stats).mean())
    return UnsureRule(floor, statistic, limit, {"data": description, "images": int(len(probabilities)),
                                                 "target_rate": target_rate, "flagged_rate": rate})
