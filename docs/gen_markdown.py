"""Markdown tables for the generated pages, written and read back (tests read generated tables with `table_rows`)."""

from __future__ import annotations

from typing import Any, Iterable


def table(header: Iterable[str], rows: Iterable[Iterable[Any]], align: str = "") -> str:
    """A Markdown table; `align` holds one letter per column (l or r), left where missing. Cells are written as
    given: escape a `|` inside one as `\\|`."""
    header = list(header)
    align = align.ljust(len(header), "l")
    lines = ["| " + " | ".join(header) + " |",
             "| " + " | ".join("---:" if a == "r" else "---" for a in align) + " |"]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def table_rows(markdown: str, first_header: str) -> list[dict[str, str]]:
    """The rows of the first table whose header starts with `first_header`, as dicts (header -> cell)."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    header = [c.strip() for c in lines[start].strip()[1:-1].split(" | ")]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, (c.strip() for c in line.strip()[1:-1].split(" | ")))))
    return rows
