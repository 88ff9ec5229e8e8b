"""Keep the quantization tools' own output off the user's terminal, and within reach of `--verbose`.

onnxruntime's quantizer prints calibration progress to stdout and warns through the *root* logger; an
unconfigured root logger prints `WARNING:root:Please consider to run pre-processing...` on every int8 export.
Inside `library_chatter()` both go to the `edgecls.exporters` logger at DEBUG level instead: silent unless the
application shows that logger (`edgecls --verbose` does, see edgecls.quiet).
"""

from __future__ import annotations

import contextlib
import io
import logging
from typing import Iterator

LOGGER = logging.getLogger("edgecls.exporters")


class _Forward(logging.Handler):
    """Re-emits another library's records on LOGGER at DEBUG level (edgecls's own records pass untouched)."""

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith("edgecls"):
            LOGGER.debug("%s: %s", record.name, record.getMessage())


@contextlib.contextmanager
def library_chatter() -> Iterator[None]:
    """Route root-logger records and stdout printed inside the block to LOGGER (DEBUG)."""
    root, forward, printed = logging.getLogger(), _Forward(), io.StringIO()
    root.addHandler(forward)  # a root logger with a handler is never given logging's default stderr one
    try:
        with contextlib.redirect_stdout(printed):
            yield
    finally:
        root.removeHandler(forward)
        for line in printed.getvalue().splitlines():
            if line.strip():
                LOGGER.debug(line)
