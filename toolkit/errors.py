"""Toolkit-level errors; all are EdgeclsError so the CLI reports them in one line."""

from .runtime.errors import EdgeclsError, ModelNotFoundError  # noqa: F401  (the store raises it)


class DataError(EdgeclsError):
    """A data set is missing, corrupt or unusable; the message names where we looked."""

