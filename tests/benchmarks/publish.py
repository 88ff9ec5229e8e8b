"""Where every benchmark script's results go: printed, then saved atomically (markdown, and JSON beside it), each
with the machine, the date and the load average at the time, so a figure never travels without them."""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from edgecls.machine import describe_machine
from edgecls.runtime.atomic import write_bytes_atomic, write_json_atomic


def measurement_record() -> dict[str, Any]:
    """When, where and how busy: the load average says whether other work shared the cores during the run."""
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": describe_machine(),
            "load_average": [round(v, 2) for v in os.getloadavg()]}


def provenance_line(record: dict[str, Any]) -> str:
    one, five, fifteen = record["load_average"]
    return (f"Saved {record['date']} on {record['machine']}; load average {one:.2f} / {five:.2f} / {fifteen:.2f} "
            "(1 / 5 / 15 min) when saved.")


def publish(out: Path, text: str, data: Optional[Any] = None) -> None:
    """Print `text`, save it to `out` and, when given, `data` to `out` with a .json suffix; a run killed while
    saving leaves the previous results whole. Both carry the measurement record (a dict `data` under "measured")."""
    out = Path(out)
    record = measurement_record()
    text = text.rstrip("\n") + "\n\n" + provenance_line(record) + "\n"
    print(text)
    write_bytes_atomic(out, text.encode())
    if data is not None:
        write_json_atomic(out.with_suffix(".json"), {**data, "measured": record} if isinstance(data, dict) else data)
    print(f"wrote {out}" + (" and .json" if data is not None else ""), file=sys.stderr)
