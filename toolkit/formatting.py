"""Number formatting shared by the CLI tables and the Markdown reports."""

from __future__ import annotations

from typing import Optional


def percent(value: Optional[float]) -> str:
    """A 0-1 fraction as a percentage with two decimals; "n/a" when there is nothing to show."""
    return "n/a" if value is None else f"{value * 100:.2f}%"
