"""Prediction writers moved to the library (edgecls.runtime.outputs) so embedding apps can reuse them;
re-exported here for code that imported them from the CLI."""

from __future__ import annotations

from ..runtime.outputs import FORMATS, Writer, result_dict

__all__ = ["FORMATS", "Writer", "result_dict"]
