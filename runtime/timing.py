"""Timing on the machine at hand: one set of loops for the choices edgecls tunes once and caches (variant auto,
sub-batch size, batch-1 core count), `edgecls bench`, export's speed figures and the benchmark scripts.
Candidates take turns round after round, so drift and load from other processes hit them all alike, and each
keeps the samples of its turns.

Stable API: seconds, take_turns, window_rate, call_times."""

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


def window_rate(fn: Callable[..., Any], *args: Any, items: int = 1, window_s: float = 0.5) -> float:
    """Items per second of fn(*args) called back to back for at least `window_s` (each call handles `items`)."""
    calls, start = 0, time.perf_counter()
    while True:
        fn(*args)
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= window_s:
            return calls * items / elapsed


def call_times(fn: Callable[..., Any], args: Iterable[tuple], calls: int) -> list[float]:
    """Seconds of `calls` calls fn(*a), the arguments taken in turn from `args` (cycled)."""
    pool = list(args)
    clock = time.perf_counter
    out = []
    for i in range(calls):
        a = pool[i % len(pool)]
        start = clock()
        fn(*a)
        out.append(clock() - start)
    return out
