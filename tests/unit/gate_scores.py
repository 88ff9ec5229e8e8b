"""Hand-made score arrays for the gate tests: a reference and a variant whose output error, near ties and
decisive flips are known by construction."""

from __future__ import annotations

import numpy as np


def one_hot(classes: np.ndarray, k: int = 3, high: float = 0.9) -> np.ndarray:
    """Confident scores: `high` on the given class, the rest shared by the others."""
    probs = np.full((len(classes), k), (1 - high) / (k - 1))
    probs[np.arange(len(classes)), classes] = high
    return probs


def noisy(n: int, error: float) -> tuple[np.ndarray, np.ndarray]:
    """Scores with a margin of 0.8 everywhere and every image's largest difference exactly `error`."""
    ref = one_hot(np.arange(n) % 3)
    probs = ref.copy()
    probs[np.arange(n), (np.arange(n) + 1) % 3] += error
    return ref, probs


def flipping(n: int, near_ties: int, decisive: int, error: float = 0.008,
             downward: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Every image off by `error` (the output error); `near_ties` flips where the reference's top-two margin
    (0.004) is below it, and `decisive` flips where the margin (0.01) is above it, the variant moving both scores
    by just over half the margin to swap them (from the first label to the second, or back when `downward`)."""
    ref, probs = noisy(n, error)
    tie, flip = ([0.402, 0.398], [0.398, 0.402]), ([0.405, 0.395], [0.39995, 0.40005])
    if downward:
        tie, flip = tuple(t[::-1] for t in tie), tuple(f[::-1] for f in flip)
    ref[:near_ties], probs[:near_ties] = tie[0] + [0.2], tie[1] + [0.2]
    ref[near_ties:near_ties + decisive] = flip[0] + [0.2]
    probs[near_ties:near_ties + decisive] = flip[1] + [0.2]
    return ref, probs
