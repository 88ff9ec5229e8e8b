"""Error types shared by every layer; the CLI turns them into one-line messages."""

from __future__ import annotations


class EdgeclsError(Exception):
    """Base for errors a user can act on: the message says what and where, no traceback needed."""


class ImageError(EdgeclsError):
    """An image could not be decoded or converted; carries the offending source's name."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class ModelNotFoundError(EdgeclsError):
    """No model of that name, folder or file: the message says where edgecls looked and what is close."""
