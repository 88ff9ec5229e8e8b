"""Process exit codes, one meaning each, so scripts can tell what happened without parsing messages. Every
command maps its result to one of these here; the library below the CLI returns results and raises errors."""

from __future__ import annotations

OK = 0  # everything asked for was done
ERROR = 1  # usage error, bad model, unusable output location, nothing to do: nothing (more) was produced
INPUTS_SKIPPED = 2  # the run finished, but some inputs were unreadable or skipped (each one was reported)
INTERRUPTED = 130  # Ctrl-C (128 + SIGINT); results so far are kept where the command says

DESCRIPTIONS = {
    OK: "all inputs processed",
    ERROR: "usage or model error (nothing written over anything)",
    INPUTS_SKIPPED: "finished, but some inputs were unreadable or skipped (each one reported)",
    INTERRUPTED: "interrupted (Ctrl-C)",
}


def for_run(failed: int, skipped: int, interrupted: bool = False) -> int:
    """A run over many inputs: interrupted, else some inputs unreadable or skipped, else all done."""
    if interrupted:
        return INTERRUPTED
    return INPUTS_SKIPPED if failed or skipped else OK
