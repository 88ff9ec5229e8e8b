"""Prediction writers for `edgecls infer`: CSV, JSON and JSON Lines, row by row (bounded memory)."""

from __future__ import annotations

import csv
import json
import numbers
from typing import IO, Any

from ..distributed.columns import prediction_columns
from ..runtime.stream import Result

FORMATS = ("table", "csv", "json", "jsonl")


def result_dict(r: Result) -> dict[str, Any]:
    if r.prediction is None:
        return {"path": r.source, "label": None, "score": None, "unsure": None, "top_k": [], "error": r.error}
    p = r.prediction
    return {"path": r.source, "label": p.label, "score": round(p.score, 6), "unsure": p.unsure,
            "top_k": [{"label": lbl, "score": round(s, 6)} for lbl, s in p.top_k], "error": None}


def csv_cell(value: Any) -> Any:
    """How a table value is written to CSV: scores with 6 decimals, a missing value (error rows) empty."""
    if value is None:
        return ""
    return f"{value:.6f}" if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral) else value


class Writer:
    """Streams results to a text handle in one of the machine formats."""

    def __init__(self, fh: IO[str], fmt: str, top_k: int) -> None:
        if fmt not in ("csv", "json", "jsonl"):
            raise ValueError(f"no streaming writer for {fmt!r}")
        self.fh, self.fmt, self.top_k, self.count = fh, fmt, top_k, 0
        if fmt == "csv":
            self._csv = csv.writer(fh)
            self._csv.writerow(prediction_columns(top_k))  # the Ray engine's columns too
        elif fmt == "json":
            fh.write("[")

    def write(self, r: Result) -> None:
        if self.fmt == "csv":  # straight from the Prediction: this runs once per image
            p = r.prediction
            if p is None:
                self._csv.writerow([r.source, "", "", ""] + ["", ""] * (self.top_k - 1) + [r.error])
            else:
                cells: list[Any] = [r.source, p.label, csv_cell(p.score), p.unsure]
                for i in range(1, self.top_k):
                    cells += [p.top_k[i][0], csv_cell(p.top_k[i][1])] if i < len(p.top_k) else ["", ""]
                cells.append("")
                self._csv.writerow(cells)
            self.count += 1
            return
        row = result_dict(r)
        if self.fmt == "jsonl":
            self.fh.write(json.dumps(row) + "\n")
        else:
            self.fh.write(("," if self.count else "") + "\n  " + json.dumps(row))
        self.count += 1

    def close(self) -> None:
        if self.fmt == "json":
            self.fh.write("\n]\n" if self.count else "]\n")
        self.fh.flush()
