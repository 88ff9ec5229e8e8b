"""Toolkit-level errors; all are EdgeclsError so the CLI reports them in one line."""

from .runtime.errors import EdgeclsError


class DataError(EdgeclsError):
    """A data set is missing, corrupt or unusable; the message names where we looked."""


class ModelNotFoundError(EdgeclsError):
    """No registry entry or artifact matches the requested model."""
