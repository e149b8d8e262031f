"""syncd's HTTP protocol: uvicorn's ``httptools`` protocol with bounded request heads.

- **Request heads.** A request head (request line and headers) must be complete within
  ``request_timeout_seconds`` of its first byte (or of the connection), however slowly it
  trickles in; it may hold at most :data:`MAX_REQUEST_HEAD_BYTES` (beyond: HTTP 431). An address
  already opening ``max_pending_per_address`` connections (heads incomplete, or a WebSocket
  handshake not yet answered) has any further connection closed at once, so a slowloris cannot
  use up the process's file descriptors (``pending_requests.py``).
- **WebSocket upgrades** are handed to the WebSocket protocol (``websocket_protocol.py``) as the
  request httptools already parsed, so a head of up to :data:`MAX_REQUEST_HEAD_BYTES` (a long
  ``?token=``) reaches the application, which refuses it the way browsers can see (accept,
  permission denied, 4401), instead of tripping the ``websockets`` parser's 8 KiB line limit
  that answered nothing.
- **Closing** cannot hang: the connection runs on a ``BoundedCloseTransport``
  (``bounded_close.py``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from websockets.datastructures import Headers
from websockets.http11 import Request

from .bounded_close import REFUSAL_LINGER_SECONDS, guarded
from .pending_requests import Opening, PendingRequests
from .websocket_protocol import WebSocketProtocol

if TYPE_CHECKING:
    from .server_protocols import TransportLimits

__all__ = ["MAX_REQUEST_HEAD_BYTES", "HttpProtocol"]

# Every module of syncd's uvicorn protocols logs under the one name they always had.
log = logging.getLogger("syncd.transport")

# A request line and headers together; a browser's upgrade with a long ?token= or cookies fits.
MAX_REQUEST_HEAD_BYTES = 64 * 1024


class _HeadTooLarge(Exception):
    pass


class _TooManyPending(Exception):
    pass


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with bounded request heads (see the module docstring)."""

    limits: ClassVar[TransportLimits]
    pending: ClassVar[PendingRequests]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._opening: Opening | None = None
        self._head_bytes = 0
        self._discarding = False  # refused: read and drop whatever else comes, then close

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        bounded = guarded(transport)
        super().connection_made(bounded)  # type: ignore[arg-type]
        if not self._begin_opening():
            log.debug("%s: too many connections being opened; closed", self._address())
            self._discarding = True
            bounded.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._end_opening()
        super().connection_lost(exc)

    def _address(self) -> str | None:
        return self.client[0] if self.client else None

    def _begin_opening(self) -> bool:
        if self._opening is None:
            self._opening = self.pending.open(self._address(), self.transport)
            return self._opening is not None
        return True

    def _end_opening(self) -> None:
        if self._opening is not None:
            self._opening.close()
            self._opening = None

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            if self._should_upgrade():
                offset = upgrade.args[0] if upgrade.args else len(data)
                self._upgrade_to_websocket(data[offset:])
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, _HeadTooLarge):
                log.info(
                    "%s: request head over %d bytes; answering 431",
                    self._address(),
                    MAX_REQUEST_HEAD_BYTES,
                )
                self._refuse(431, "request head too large")
            elif isinstance(cause, _TooManyPending):
                log.debug("%s: too many connections being opened; closed", self._address())
                self._discarding = True
                self.transport.abort()
            else:
                raise
        except httptools.HttpParserError:
            self._end_opening()
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` and close, reading (and dropping) what the client still sends until
        it closes: closing with unread data would reset the connection and lose the answer."""
        self._discarding = True
        self._end_opening()
        transport = self.transport
        if self.cycle is not None and not self.cycle.response_complete:
            transport.abort()  # a pipelined request while a response is being written
            return
        body = message.encode()
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.append(
            b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n" % len(body)
        )
        transport.write(b"".join(head) + body)
        if transport.can_write_eof():
            transport.write_eof()
        self.flow.resume_reading()
        self.loop.call_later(REFUSAL_LINGER_SECONDS, transport.abort)

    # Parser callbacks: count the head, start the deadline of every request on the connection.

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        if not self._begin_opening():  # a later request on a kept-alive connection
            raise _TooManyPending

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_REQUEST_HEAD_BYTES:
            raise _HeadTooLarge

    def on_headers_complete(self) -> None:
        if not (self.parser.should_upgrade() and self._should_upgrade()):
            self._end_opening()  # an upgrade keeps it until the handshake is answered
        super().on_headers_complete()

    def _upgrade_to_websocket(self, rest: bytes) -> None:
        """Hand the parsed request to the WebSocket protocol (instead of serializing it again
        for the ``websockets`` parser, whose 8 KiB line limit would answer a long URL with
        nothing), with the bytes that followed it and the opening's deadline."""
        if not issubclass(self.ws_protocol_class, WebSocketProtocol):  # type: ignore[arg-type]
            self.handle_websocket_upgrade()
            return
        try:
            path = self.url.decode("ascii")
        except UnicodeDecodeError:
            self._refuse(400, "request target is not ASCII")
            return
        headers = Headers(
            [(name.decode("latin-1"), value.decode("latin-1")) for name, value in self.headers]
        )
        request = Request(path, headers, self.scope["method"])
        self.connections.discard(self)
        protocol = self.ws_protocol_class(  # type: ignore[misc]
            config=self.config, server_state=self.server_state, app_state=self.app_state
        )
        protocol.adopt(self.transport, self.server, self.client)
        self.transport.set_protocol(protocol)
        opening, self._opening = self._opening, None
        protocol.start(request, rest, opening)
