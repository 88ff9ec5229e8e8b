"""The one error type routes raise: an HTTP status plus a message for the client's {"error": ...} body."""

from __future__ import annotations


class ApiError(Exception):
    """A request the server will not serve, and why. Client errors are answered, never logged as tracebacks."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
