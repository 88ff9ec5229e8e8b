"""Timing on the machine at hand, for the choices edgecls measures once and caches (variant auto, sub-batch
size, batch-1 core count): the candidates take turns round after round, so drift and load from other processes
hit them all alike, and each keeps the samples of its turns."""

from __future__ import annotations

import time
from typing import Any, Callable, Hashable, Iterable, TypeVar

K = TypeVar("K", bound=Hashable)


def seconds(fn: Callable[..., Any], *args: Any) -> float:
    """Wall-clock seconds of one call fn(*args)."""
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def take_turns(turns: dict[K, Callable[[], Iterable[float]]], budget_s: float, min_rounds: int,
               max_rounds: int) -> dict[K, list[float]]:
    """Each round runs every turn once, in order; a turn runs its candidate and returns what it timed. Rounds go
    on while fewer than `min_rounds` ran, or until `budget_s` has passed or `max_rounds` ran."""
    samples: dict[K, list[float]] = {key: [] for key in turns}
    deadline = time.perf_counter() + budget_s
    rounds = 0
    while rounds < min_rounds or (time.perf_counter() < deadline and rounds < max_rounds):
        for key, turn in turns.items():
            samples[key].extend(turn())
        rounds += 1
    return samples
