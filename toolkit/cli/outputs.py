"""Prediction writers for `edgecls infer`: CSV, JSON and JSON Lines, row by row (bounded memory)."""

from __future__ import annotations

import csv
import json
from typing import IO, Any

from ..runtime.stream import Result

FORMATS = ("table", "csv", "json", "jsonl")


def result_dict(r: Result) -> dict[str, Any]:
    if r.prediction is None:
        return {"path": r.source, "label": None, "score": None, "unsure": None, "top_k": [], "error": r.error}
    p = r.prediction
    return {"path": r.source, "label": p.label, "score": round(p.score, 6), "unsure": bool(p.unsure),
            "top_k": [{"label": lbl, "score": round(s, 6)} for lbl, s in p.top_k], "error": None}


class Writer:
    """Streams results to a text handle in one of the machine formats."""

    def __init__(self, fh: IO[str], fmt: str, top_k: int) -> None:
        if fmt not in ("csv", "json", "jsonl"):
            raise ValueError(f"no streaming writer for {fmt!r}")
        self.fh, self.fmt, self.top_k, self.count = fh, fmt, top_k, 0
        if fmt == "csv":
            self._csv = csv.writer(fh)
            header = ["path", "label", "score", "unsure"]
            for i in range(2, top_k + 1):
                header += [f"label_{i}", f"score_{i}"]
            self._csv.writerow(header + ["error"])
        elif fmt == "json":
            fh.write("[")

    def write(self, r: Result) -> None:
        if self.fmt == "csv":  # straight from the Prediction: this runs once per image
            p = r.prediction
            if p is None:
                self._csv.writerow([r.source, "", "", ""] + ["", ""] * (self.top_k - 1) + [r.error])
            else:
                cells: list[Any] = [r.source, p.label, f"{p.score:.6f}", "1" if p.unsure else "0"]
                for i in range(1, self.top_k):
                    cells += [p.top_k[i][0], f"{p.top_k[i][1]:.6f}"] if i < len(p.top_k) else ["", ""]
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
