"""Process exit codes, one meaning each, so scripts can tell what happened without parsing messages."""

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
