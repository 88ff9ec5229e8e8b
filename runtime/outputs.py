"""Prediction output for apps and the CLI: CSV/JSON/JSON Lines writers (row by row, bounded memory), an
output file that is checked before any work starts and never destroys an input, and the tally of a run
(counts, the failures and skipped entries to report). What a refusal means for a command line (which flag
to use, the exit code) is the CLI's business: `OutputError.kind` tells it which refusal it is.

File names that are not valid UTF-8 arrive from the walk as surrogate-escaped strings (PEP 383). CSV and
JSON Lines/JSON files keep them exactly: CSV writes the original bytes, JSON writes the same string as
`\\udcXX` escapes; both read back (csv with errors="surrogateescape", json.loads) to the str the walk gave,
and `os.fsencode` of that is the file's real name.
"""

from __future__ import annotations

import csv
import errno
import fnmatch
import json
import os
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Optional, Sequence, Union

from .errors import EdgeclsError
from .files import IMAGE_SUFFIXES, Skipped
from .stream import Result

FORMATS = ("table", "csv", "json", "jsonl")
FILE_FORMATS = ("csv", "json", "jsonl")
PARTIAL_SUFFIX = ".partial"


class OutputError(EdgeclsError):
    """The output location cannot be used; raised before any image is decoded. `kind` names the refusal:
    directory, format, input (an input or the model), exists (a file that is not a predictions file), or ""."""

    def __init__(self, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.kind = kind


def result_dict(r: Result) -> dict[str, Any]:
    if r.prediction is None:
        return {"path": r.source, "label": None, "score": None, "top_k": [], "labels": [], "unsure": None,
                "error": r.error}
    p = r.prediction
    return {"path": r.source, "label": p.label, "score": round(p.score, 6),
            "top_k": [{"label": lbl, "score": round(s, 6)} for lbl, s in p.top_k],
            "labels": list(p.labels or (p.label,)),  # multi-label models: every label over the threshold
            "unsure": bool(p.unsure), "error": None}


class Writer:
    """Streams results to a text handle in one of the machine formats."""

    def __init__(self, fh: IO[str], fmt: str, top_k: int) -> None:
        if fmt not in FILE_FORMATS:
            raise ValueError(f"no streaming writer for {fmt!r}")
        self.fh, self.fmt, self.top_k, self.count = fh, fmt, top_k, 0
        if fmt == "csv":
            self._csv = csv.writer(fh)
            header = ["path", "label", "score"]
            for i in range(2, top_k + 1):
                header += [f"label_{i}", f"score_{i}"]
            self._csv.writerow(header + ["unsure", "error"])
        elif fmt == "json":
            fh.write("[")

    def write(self, r: Result) -> None:
        if self.fmt == "csv":  # straight from the Prediction: this runs once per image
            p = r.prediction
            if p is None:
                self._csv.writerow([r.source, "", ""] + ["", ""] * (self.top_k - 1) + ["", r.error])
            else:
                cells: list[Any] = [r.source, p.label, f"{p.score:.6f}"]
                for i in range(1, self.top_k):
                    cells += [p.top_k[i][0], f"{p.top_k[i][1]:.6f}"] if i < len(p.top_k) else ["", ""]
                cells += ["true" if p.unsure else "false", ""]
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


def choose_format(output: Optional[Path], fmt: Optional[str] = None, as_json: bool = False) -> str:
    """--json > --format > the output file's suffix > table."""
    chosen = "json" if as_json else fmt or (output.suffix.lstrip(".").lower() if output else "table")
    if chosen not in FORMATS or (output is not None and chosen == "table"):
        raise OutputError(f"unknown output format {chosen!r}; use .csv, .json or .jsonl", "format")
    return chosen


def looks_like_predictions(path: Path) -> bool:
    """True for an empty file or one an edgecls run wrote (CSV header, JSON array of rows, JSON Lines)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64).lstrip()
    except OSError:
        return False
    return (not head or head.startswith(b"path,label,score") or head.startswith(b'{"path":')
            or head == b"[" or head.startswith(b"[]") or head.startswith(b'[\n  {"path":'))


def _same_file(a: Union[str, Path], b: Union[str, Path]) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _would_be_walked(output: Path, item: str, recursive: bool) -> bool:
    """Could the walk of `item` yield the output file (now or once it exists)?"""
    if output.suffix.lower() not in IMAGE_SUFFIXES:
        return False
    if any(ch in item for ch in "*?[") and not os.path.lexists(item):
        return fnmatch.fnmatch(str(output), item) or fnmatch.fnmatch(os.path.abspath(output), os.path.abspath(item))
    if not os.path.isdir(item):
        return False
    folder = os.path.realpath(item)
    parent = os.path.realpath(output.parent)
    if recursive:
        return parent == folder or parent.startswith(folder.rstrip(os.sep) + os.sep)
    return parent == folder


def check_output(output: Path, inputs: Sequence[Union[str, os.PathLike]] = (), *, recursive: bool = False,
                 force: bool = False, protected: Iterable[Union[str, os.PathLike]] = ()) -> None:
    """Refuse an output location before any work starts: a directory, a missing or read-only folder, a
    FIFO/device, any input (or a file the walk of an input folder/glob would read), a `protected` file
    (the model), or an existing file that is not an edgecls prediction file unless force is set."""
    output = Path(output)
    where = str(output)
    if output.is_dir():
        raise OutputError(f"{where}: is a directory, not a file name (e.g. {output / 'predictions.csv'})", "directory")
    parent = output.parent
    if not parent.is_dir():
        raise OutputError(f"{where}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{where}: folder {parent} is not writable")
    for item in (*map(os.fspath, inputs), *map(os.fspath, protected)):
        if _same_file(output, item):
            raise OutputError(f"{where}: is an input of this run ({item}); refusing to write over it", "input")
    for item in map(os.fspath, inputs):
        if _would_be_walked(output, item, recursive):
            raise OutputError(f"{where}: lies among the inputs ({item}) and would be read as an image; "
                              "write predictions elsewhere", "input")
    for path in (output, output.with_name(output.name + PARTIAL_SUFFIX)):
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise OutputError(f"{path}: cannot check the output location ({exc.strerror or exc})") from None
        if stat.S_ISLNK(mode):
            try:
                mode = os.stat(path).st_mode
            except OSError:
                continue  # a dangling link is replaced, never followed
        if not stat.S_ISREG(mode):
            raise OutputError(f"{path}: exists and is not a regular file; refusing to write there")
    if output.exists() and not force and not looks_like_predictions(output):
        raise OutputError(f"{where}: exists and is not an edgecls predictions file; refusing to overwrite it",
                          "exists")


class PredictionFile:
    """Predictions streamed to `<path>.partial` and renamed over `<path>` only when the run completes,
    so readers see the old file or the complete new one; an interrupted run keeps the `.partial`."""

    def __init__(self, path: Path, fmt: str, top_k: int) -> None:
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + PARTIAL_SUFFIX)
        try:
            if os.path.islink(self.partial):
                os.unlink(self.partial)  # never write through a link planted at the temp name
            fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
                         | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as exc:
            raise OutputError(f"{self.partial}: cannot write ({exc.strerror or exc})") from None
        self.fh = os.fdopen(fd, "w", newline="", encoding="utf-8", errors="surrogateescape")
        self.writer = Writer(self.fh, fmt, top_k)

    def write(self, r: Result) -> None:
        self.writer.write(r)

    def _close(self) -> None:
        if not self.fh.closed:
            self.writer.close()
            os.fsync(self.fh.fileno())
            self.fh.close()

    def commit(self) -> Path:
        """Finish and move into place; returns the final path."""
        self._close()
        try:
            os.replace(self.partial, self.path)
        except OSError as exc:
            if exc.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
                raise OutputError(f"{self.path}: became a directory during the run; predictions kept in {self.partial}") from None
            raise OutputError(f"{self.path}: cannot move predictions into place ({exc.strerror or exc}); "
                              f"they are in {self.partial}") from None
        return self.path

    def discard(self) -> None:
        """Nothing to write after all: remove the .partial and leave any existing output untouched."""
        self._close()
        self.partial.unlink(missing_ok=True)

    def keep_partial(self) -> Path:
        """Stop here (interrupted): what was written stays in the .partial file."""
        self._close()
        return self.partial


MAX_LISTED = 50  # failures and skipped entries kept for the report; counts stay exact beyond this


@dataclass
class RunTally:
    """Counts of a run and the first MAX_LISTED failures and skips (memory stays bounded)."""

    ok: int = 0
    failed: int = 0
    skipped: int = 0
    unsure: int = 0
    failures: list[Result] = field(default_factory=list)
    skips: list[Skipped] = field(default_factory=list)

    def add(self, r: Result) -> None:
        if r.ok:
            self.ok += 1
            if r.prediction is not None and r.prediction.unsure:
                self.unsure += 1
        else:
            self.failed += 1
            if len(self.failures) < MAX_LISTED:
                self.failures.append(r)

    def skip(self, s: Skipped) -> None:
        self.skipped += 1
        if len(self.skips) < MAX_LISTED:
            self.skips.append(s)

    @property
    def total(self) -> int:
        return self.ok + self.failed

    def problem_lines(self) -> list[str]:
        """One line per reported problem, then how many more there were."""
        lines = [f"skipped {printable(s.path)}: {s.reason}" for s in self.skips]
        if self.skipped > len(self.skips):
            lines.append(f"... and {self.skipped - len(self.skips)} more skipped entries")
        lines += [f"failed {printable(r.source)}: {printable(r.error or '')}" for r in self.failures]
        if self.failed > len(self.failures):
            lines.append(f"... and {self.failed - len(self.failures)} more failures")
        return lines


def printable(text: str) -> str:
    """Text safe to show on a terminal, literally: bytes that are not UTF-8 as \\xNN, control characters
    (newlines, escape sequences) as escapes. Markup is the printer's business (print with markup off)."""
    if text.isprintable() and text.isascii():
        return text
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(ch if unicodedata.category(ch) != "Cc" else repr(ch)[1:-1] for ch in text)
