"""Export failures a user can act on."""

from __future__ import annotations

from typing import Any

from ..runtime.errors import EdgeclsError


class ExportError(EdgeclsError):
    """The model cannot be exported as asked (bad file, unsupported layer, not an image model...)."""


class GateError(ExportError):
    """A variant failed validation; the report says which gate and by how much."""

    def __init__(self, message: str, report: Any = None) -> None:
        super().__init__(message)
        self.report = report
