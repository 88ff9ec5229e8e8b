"""What an error raised below the command line means on it: the flag that changes the outcome. The library
names the refusal (`OutputError.kind`); only the CLI knows its flags."""

from __future__ import annotations

OUTPUT_HINTS = {
    "directory": "give a file name to --output",
    "format": "or name the format with --format",
    "input": "even --force does not allow this",
    "exists": "use --force to replace it",
    "missing": "give --output",
}


def cli_message(exc: Exception) -> str:
    """The one line a command prints for `exc`: its message, and the flag to use where one applies."""
    from ..runtime.outputs import OutputError

    hint = OUTPUT_HINTS.get(exc.kind) if isinstance(exc, OutputError) else None
    return f"{exc}; {hint}" if hint else str(exc)
