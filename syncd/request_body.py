"""Bounded HTTP request bodies: reading them with a limit, JSON strictly, and never draining a
large body nobody reads.

:func:`read_body` never reads past its limit: a ``Content-Length`` above it is refused (413)
before a byte is read, and a chunked body as soon as it passes the limit.

What happens to the rest of a body the application did not read (refused, or answered 401/404
without looking at it) is :class:`UnreadBodyGuard`'s business. Left alone, the HTTP server
would read and discard it to reach the next request on the connection, however large it is. A
client that sends its whole body before reading the answer (most do) never sees its 413 if the
connection closes while the body is still coming (its write fails, the kernel resets the
connection), so a modest remainder is worth draining. The guard therefore closes the connection
after the answer (``Connection: close``) when the unread body is chunked (its size is unknown)
or announces more than ``drain_limit`` bytes; smaller ones are drained by the server.

JSON is parsed as RFC 8259 says and as JavaScript's ``JSON.parse`` does: UTF-8 only, no
``NaN``/``Infinity``. Nesting deeper than Python's parser allows (it raises ``RecursionError``)
is a bad request like any other syntax error, never a server error.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyRefused", "UnreadBodyGuard", "parse_json", "read_body", "read_json"]


class BodyRefused(Exception):
    """A request body that was refused: too large (413) or not what was expected (400)."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message

    def response(self) -> JSONResponse:
        """The JSON error answer (``{"error", "message"}``)."""
        return JSONResponse({"error": self.error, "message": self.message}, self.status)


def _declared_length(value: str | None) -> int | None:
    # The HTTP parser has already refused a Content-Length that is not a number; this only keeps
    # a server without that check from failing here.
    value = (value or "").strip()
    return int(value) if value.isascii() and value.isdigit() else None


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, at most ``limit`` bytes.

    Raises:
        BodyRefused: 413 when the body is (or announces itself as) larger than ``limit``.
    """
    declared = _declared_length(request.headers.get("content-length"))
    if declared is not None and declared > limit:
        raise BodyRefused(413, "too_large", f"request body over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyRefused(413, "too_large", f"request body over {limit} bytes")
    return bytes(body)


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def parse_json(body: bytes) -> Any:
    """``body`` as JSON (UTF-8, no NaN/Infinity); raises :class:`BodyRefused` (400)."""
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise BodyRefused(400, "bad_request", "body is not UTF-8") from exc
    except RecursionError as exc:
        raise BodyRefused(400, "bad_request", "JSON nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, an integer of 4300+ digits
        raise BodyRefused(400, "bad_request", f"invalid JSON: {exc}") from exc


async def read_json(request: Request, limit: int) -> Any:
    """The body as JSON, at most ``limit`` bytes; raises :class:`BodyRefused` (400 or 413)."""
    return parse_json(await read_body(request, limit))


class UnreadBodyGuard:
    """ASGI middleware: an answer given before the request body was read to its end closes the
    connection when that body is chunked or announces more than ``drain_limit`` bytes.

    >>> app = UnreadBodyGuard(app, drain_limit=16 * 1024 * 1024)  # doctest: +SKIP
    """

    def __init__(self, app: ASGIApp, drain_limit: int) -> None:
        self.app = app
        self.drain_limit = drain_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: int | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = max(declared or 0, _declared_length(value.decode("latin-1")) or 0)
            elif name == b"transfer-encoding":
                chunked = True
        # HTTP/1.1: a request with neither header has no body.
        read_all = not chunked and not declared
        too_big_to_drain = chunked or (declared or 0) > self.drain_limit

        async def tracking_receive() -> Message:
            nonlocal read_all
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                read_all = True
            return message

        async def guarded_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not read_all and too_big_to_drain:
                message = dict(message)
                message["headers"] = [*message.get("headers", []), (b"connection", b"close")]
            await send(message)

        await self.app(scope, tracking_receive, guarded_send)
