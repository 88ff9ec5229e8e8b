"""Where every benchmark script's results go: printed, then saved atomically (markdown, and JSON beside it)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

from edgecls.runtime.atomic import write_bytes_atomic, write_json_atomic


def publish(out: Path, text: str, data: Optional[Any] = None) -> None:
    """Print `text`, save it to `out` and, when given, `data` to `out` with a .json suffix; a run killed while
    saving leaves the previous results whole."""
    out = Path(out)
    text = text if text.endswith("\n") else text + "\n"
    print(text)
    write_bytes_atomic(out, text.encode())
    if data is not None:
        write_json_atomic(out.with_suffix(".json"), data)
    print(f"wrote {out}" + (" and .json" if data is not None else ""), file=sys.stderr)
