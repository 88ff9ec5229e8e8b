"""Request body limit: 413 before a byte is parsed, whether or not the client said the size.

`read_body` is the limit for routes that speak raw ASGI (the inference route); `BodyLimit` applies the same
rule as middleware to the Starlette routes."""

from __future__ import annotations

from typing import Optional

import orjson

from .errors import ApiError


class Disconnected(Exception):
    """The client went away before its request body arrived; there is no one to answer."""


def declared_too_big(scope, max_bytes: int) -> Optional[str]:
    """Why the declared Content-Length is refused, or None when it fits (or is not given)."""
    for key, value in scope["headers"]:
        if key == b"content-length":
            if not value.isdigit() or int(value) > max_bytes:
                return f"request body of {value.decode('latin-1')} bytes exceeds the limit of {max_bytes} bytes"
            return None
    return None


async def read_body(receive, max_bytes: int) -> bytes:
    """The whole request body, or ApiError(413) as soon as it passes `max_bytes`."""
    chunks, received = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected()
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > max_bytes:
            raise ApiError(413, f"request body exceeds the limit of {max_bytes} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_body(send, status: int, body: bytes, content_type: bytes = b"application/json",
                    headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    """One complete response on a raw ASGI `send`."""
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


def error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})


class BodyLimit:
    """Refuse bodies over `max_bytes`: at once when Content-Length says so, else as soon as the stream exceeds it."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = declared_too_big(scope, self.max_bytes)
        if refused is not None:
            await send_body(send, 413, error_body(refused), headers=((b"connection", b"close"),))
            return
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:  # a chunked body: raised inside the route, answered by its handler
                    raise ApiError(413, f"request body exceeds the limit of {self.max_bytes} bytes")
            return message

        await self.app(scope, limited_receive, send)
