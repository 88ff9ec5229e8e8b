"""What a validation sample can show about an accuracy drop: exact intervals on paired answers.

A variant and its reference answer the same images, so what matters are the images where exactly one of them is
right: `lost` (the reference right, the variant wrong) and `gained` (the reverse). Given their total, `lost`
is binomial; its exact (Clopper-Pearson) interval bounds the drop (McNemar's exact test, as an interval).
A drop is *measurable* when the whole interval lies above zero: on 120 images that takes 6 lost images and
none gained (5.0 points), so a 0.1-point limit cannot be checked there at all, and one near-tie image
flipping is no evidence of anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95


def _log_pmf(k: int, n: int, p: float) -> float:
    if p <= 0.0:
        return 0.0 if k == 0 else -math.inf
    if p >= 1.0:
        return 0.0 if k == n else -math.inf
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + k * math.log(p) + (n - k) * math.log1p(-p))


def at_least(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    return float(sum(math.exp(_log_pmf(i, n, p)) for i in range(max(k, 0), n + 1)))


def _solve(f, target: float) -> float:
    """p in [0, 1] where the increasing function f(p) reaches `target` (bisection to 1e-12)."""
    low, high = 0.0, 1.0
    for _ in range(60):
        mid = (low + high) / 2
        if f(mid) < target:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def clopper_pearson(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Exact two-sided interval for a binomial proportion k/n."""
    if n == 0:
        return 0.0, 1.0
    tail = (1 - confidence) / 2
    low = 0.0 if k == 0 else _solve(lambda p: at_least(k, n, p), tail)
    high = 1.0 if k == n else _solve(lambda p: at_least(k + 1, n, p), 1 - tail)
    return low, high


def fewest_measurable(confidence: float = CONFIDENCE) -> int:
    """Lost images (none gained) needed before a drop is measurable: 6 at 95%."""
    tail = (1 - confidence) / 2
    return math.floor(math.log(tail) / math.log(0.5)) + 1


def resolvable_drop_pts(n: int, confidence: float = CONFIDENCE) -> float:
    """The smallest accuracy drop, in points, that `n` images can show at all."""
    return math.inf if n == 0 else fewest_measurable(confidence) * 100 / n


@dataclass(frozen=True)
class PairedDrop:
    """A variant's accuracy drop against its reference on the same `n` images, with its exact interval."""

    n: int
    lost: int  # the reference right, the variant wrong
    gained: int  # the reference wrong, the variant right
    low_pts: float
    high_pts: float
    confidence: float = CONFIDENCE

    @property
    def drop_pts(self) -> float:
        # From counts: losing exactly 0.5 points reads 0.5, not 0.5000000000000004
        return (self.lost - self.gained) * 100 / self.n if self.n else 0.0

    @property
    def measurable(self) -> bool:
        """The sample shows a drop: its whole interval lies above zero."""
        return self.low_pts > 0

    @property
    def resolvable_pts(self) -> float:
        return resolvable_drop_pts(self.n, self.confidence)

    def describe(self) -> str:
        return (f"{self.confidence:.0%} CI {self.low_pts:.2f} to {self.high_pts:.2f} pt: {self.lost} lost, "
                f"{self.gained} gained")


def paired_drop(reference_right: np.ndarray, variant_right: np.ndarray, confidence: float = CONFIDENCE) -> PairedDrop:
    """The drop from per-image correctness (booleans) of the reference and the variant."""
    reference_right, variant_right = np.asarray(reference_right, bool), np.asarray(variant_right, bool)
    n = len(reference_right)
    lost = int((reference_right & ~variant_right).sum())
    gained = int((~reference_right & variant_right).sum())
    differing = lost + gained
    if differing == 0:
        return PairedDrop(n, 0, 0, 0.0, 0.0, confidence)
    p_low, p_high = clopper_pearson(lost, differing, confidence)
    scale = differing * 100 / n
    return PairedDrop(n, lost, gained, scale * (2 * p_low - 1), scale * (2 * p_high - 1), confidence)
