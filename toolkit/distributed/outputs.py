"""Writers for prediction tables that arrive as Arrow batches (Ray runs).

Parquet (a folder of part files, or one .parquet file) or CSV with the same cells as local `infer`. Parquet
files carry which model file and variant answered in their schema metadata (`edgecls.*` keys). Every file is
written as `<name>.partial` and renamed when complete; an interrupted run keeps its partials.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ..runtime.outputs import OutputError, check_output

if TYPE_CHECKING:
    import pyarrow as pa

ROWS_PER_PART = 1_000_000
FILE_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def csv_cell(value: object) -> object:
    """A table value as local `infer` writes it to CSV: scores with 6 decimals, unsure as true/false, a
    missing value (error rows) empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:.6f}" if isinstance(value, float) else value


def check_ray_output(output: Optional[Path], fmt: Optional[str], inputs: list[str], *, recursive: bool,
                     force: bool, model: Path) -> tuple[str, bool]:
    """(format, folder?) from the output location and format: FILE.csv, FILE.parquet, or a folder (no suffix,
    or one that exists) of Parquet parts. Refuses, before any work, what local `infer` refuses for a file (an
    input, the model, a non-predictions file unless forced) and a folder that already holds files."""
    if output is None:
        raise OutputError("a Ray run writes its predictions to files (a folder of Parquet parts, FILE.parquet or "
                          "FILE.csv)", "missing")
    suffix = output.suffix.lower()
    folder = output.is_dir() or not suffix
    if not folder and suffix not in FILE_FORMATS:
        raise OutputError(f"{output}: a Ray run writes Parquet (a folder or FILE.parquet) or CSV (FILE.csv), "
                          f"not {suffix}")
    implied = "parquet" if folder else FILE_FORMATS[suffix]
    chosen = (fmt or implied).lower()
    if chosen != implied:
        raise OutputError(f"{output}: format {chosen} does not match the output "
                          f"({'a folder of Parquet parts' if folder else implied}); name it FILE.csv or FILE.parquet")
    if folder:
        if output.exists() and (not output.is_dir() or any(output.iterdir())):
            raise OutputError(f"{output}: output folder exists and is not empty; choose a new one")
    elif chosen == "parquet" and output.exists() and not force:  # check_output knows text predictions only
        raise OutputError(f"{output}: exists; refusing to overwrite it", "exists")
    else:
        check_output(output, inputs, recursive=recursive, force=force or chosen == "parquet", protected=[model])
    return chosen, folder


class ArrowSink:
    """Append Arrow tables; `close()` renames the finished files, `abort()` leaves the partials."""

    def __init__(self, output: Path, fmt: str, folder: bool, metadata: Optional[dict[str, str]] = None) -> None:
        self.output, self.fmt, self.folder, self.metadata = output, fmt, folder, metadata or {}
        self.rows_in_part, self.part = 0, 0
        self.finished: list[Path] = []
        self._writer = None
        self._fh = None
        self._partial: Optional[Path] = None
        if folder:
            output.mkdir(parents=True, exist_ok=True)
        else:
            output.parent.mkdir(parents=True, exist_ok=True)

    def write(self, table: "pa.Table") -> None:
        if self.folder and self.rows_in_part >= ROWS_PER_PART:
            self._finish_part()
        if self._partial is None:
            self._open(table.schema)
        if self.fmt == "parquet":
            self._writer.write_table(table)
        else:
            columns = [table.column(name).to_pylist() for name in table.column_names]
            self._writer.writerows([csv_cell(v) for v in row] for row in zip(*columns))
        self.rows_in_part += table.num_rows

    def _open(self, schema: "pa.Schema") -> None:
        target = self.output / f"part-{self.part:05d}.parquet" if self.folder else self.output
        self._partial = target.with_name(target.name + ".partial")
        if self.fmt == "parquet":
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(self._partial, schema.with_metadata({**(schema.metadata or {}),
                                                                                 **self.metadata}))
        else:
            self._fh = self._partial.open("w", newline="", encoding="utf-8")
            self._writer = csv.writer(self._fh)
            self._writer.writerow(schema.names)

    def _close_files(self) -> None:
        if self.fmt == "parquet":
            self._writer.close()
        else:
            self._fh.close()

    def _finish_part(self) -> None:
        self._close_files()
        target = self._partial.with_name(self._partial.name[: -len(".partial")])
        os.replace(self._partial, target)
        self.finished.append(target)
        self._partial, self.rows_in_part = None, 0
        self.part += 1

    def close(self, schema: "pa.Schema") -> Path:
        """Finish the last file (an empty run still writes one, with the header/schema); returns the output."""
        if self._partial is None and not self.finished:
            self._open(schema)
        if self._partial is not None:
            self._finish_part()
        return self.output

    def abort(self) -> Optional[Path]:
        """Close without renaming; returns the partial file kept, if any."""
        if self._partial is not None:
            self._close_files()
        return self._partial
