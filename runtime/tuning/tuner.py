"""The Tuner: every per-machine choice goes through one door, with one rule for measuring and caching.

tune="auto" (the default) reads the cache and measures what is missing (once per machine, model and setting),
"cached" only reads what an earlier run measured, "off" takes the defaults and never reads or writes the
cache; "again" (`edgecls tune --again`) measures even what is cached and replaces it. A choice comes back as a `Decision`: the value, where it came from, and the timings behind it, so
`Classifier.engine` and `edgecls tune` can say what was chosen and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..errors import EdgeclsError
from .cache import read_entry, write_entry

TUNE_MODES = ("auto", "cached", "off")  # what callers choose; "again" re-measures (edgecls tune --again)
SOURCES = ("measured", "cached", "default")


@dataclass(frozen=True)
class Decision:
    """One tuned setting: its value, where it came from (measured now, cached, default) and the timings that
    decided it (candidate -> figures; empty for a default)."""

    value: Any
    source: str
    timings: dict[str, Any] = field(default_factory=dict)
    note: str = ""  # why, when the value was not measured (e.g. "one thread: nothing to choose")


@dataclass(frozen=True)
class Tuner:
    mode: str = "auto"

    def __post_init__(self) -> None:
        if self.mode not in (*TUNE_MODES, "again"):
            raise EdgeclsError(f"unknown tune mode {self.mode!r}; choose {', '.join(TUNE_MODES)}")

    def decide(self, kind: str, key: dict[str, Any], default: Any, measure: Callable[[], tuple[Any, dict]],
               valid: Callable[[Any, dict], bool]) -> Decision:
        """The cached value for `key` when there is a valid one; else measured (tune="auto") and cached, or
        `default`. `measure` returns (value, timings); `valid(value, timings)` judges a cached entry."""
        if self.mode == "off":
            return Decision(default, "default", note="tuning off")
        entry = read_entry(key, kind + "-") if self.mode != "again" else None
        if entry is not None and "value" in entry and valid(entry["value"], entry.get("timings") or {}):
            return Decision(entry["value"], "cached", entry.get("timings") or {})
        if self.mode == "cached":
            return Decision(default, "default", note="nothing cached for this machine")
        value, timings = measure()
        write_entry(key, {"value": value, "timings": timings}, kind + "-")
        return Decision(value, "measured", timings)

    @staticmethod
    def fixed(value: Any, note: str) -> Decision:
        """A setting with nothing to choose between (one core, a GPU, ...)."""
        return Decision(value, "default", note=note)


def as_tuner(tune: "str | Tuner | None") -> Tuner:
    return tune if isinstance(tune, Tuner) else Tuner(tune or "auto")


def describe(decision: Optional[Decision]) -> str:
    if decision is None:
        return ""
    return decision.note or decision.source
