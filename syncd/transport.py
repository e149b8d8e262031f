"""syncd's own uvicorn protocols: what one connection may cost before the application sees it.

uvicorn's ``httptools`` and ``websockets-sansio`` protocols, with the bounds a public server needs
(DESIGN.md §1.4, docs/protocol.md "Limits"):

- **Request heads.** A request head (request line and headers) must be complete within
  ``request_timeout_seconds`` of its first byte (or of the connection), however slowly it
  trickles in; it may hold at most :data:`MAX_REQUEST_HEAD_BYTES` (beyond: HTTP 431). An address
  already opening ``max_pending_per_address`` connections (heads incomplete, or a WebSocket
  handshake not yet answered) has any further connection closed at once, so a slowloris cannot
  use up the process's file descriptors.
- **WebSocket upgrades** are handed to the WebSocket protocol as the request httptools already
  parsed, so a head of up to :data:`MAX_REQUEST_HEAD_BYTES` (a long ``?token=``) reaches the
  application, which refuses it the way browsers can see (accept, permission denied, 4401),
  instead of tripping the ``websockets`` parser's 8 KiB line limit that answered nothing.
- **Frames.** A frame whose header announces more than the socket's limit is refused with
  **4413** from its header alone, before its payload is read (fragments count together): the
  limit is ``max_unauthenticated_message_bytes`` until the application calls
  :func:`authenticated`, then ``max_message_bytes``.
- **Broadcast writes.** :func:`binary_writer` writes a binary message straight to the socket as
  one pre-framed write when the connection can take it at once (open, not paused by the client's
  TCP window): the ASGI ``send``, uvicorn's state checks and ``websockets``' frame objects cost
  more than the write itself when one update goes to fifty peers. Anything else (a paused
  transport, a close under way) answers False and the caller takes the ASGI path, so order and
  back-pressure stay the ASGI path's. Frames are never compressed (per-message deflate is off,
  server.py).
- **Reading frames.** A whole binary message in one masked frame (what every Yjs client sends)
  is found and unmasked in one pass (``client_frames.py``) and queued for the application;
  every other frame goes to ``websockets`` whole, from a frame boundary, and once ``websockets``
  has had to parse anything else (a fragmented message, a close) it parses all that follows.
  Reading pauses once the application is a message behind, not after every message.
- **Idle sockets** hold as little as the protocol allows (benchmarks/RESULTS.md, "Connection
  cost"): the receive queue and the writable flag are ``socket_waits``' instead of asyncio's
  (no deques), the handshake's request and response are dropped once answered, and keepalive
  pings come from one timer per server (``keepalive.py``) instead of one per socket. The
  protocol's attributes are slots (no instance dict), pongs are read with binary messages so
  ``websockets``' parser is made only for another kind of frame, the headers clients send
  alike are held once (``shared_headers.py``), and the endpoint's coroutine is awaited with no
  ASGI layer suspended above it (``socket_front.flat_app``).
- **Closing.** asyncio's ``close()`` waits until the client has read everything buffered, which a
  client that stopped reading never does; a closing connection whose buffer does not shrink for
  :data:`CLOSE_STALL_SECONDS` is aborted. :func:`aborter` lets the application drop a connection
  at once (a slow reader that does not take its close frame).

The application reaches its connection through a :class:`ConnectionHandle` that the WebSocket
protocol puts in the ASGI scope (``scope["extensions"]["syncd.transport"]``); under another
server the functions below do nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import struct
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
from starlette.requests import HTTPConnection
from uvicorn.logging import TRACE_LOG_LEVEL
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.datastructures import Headers
from websockets.exceptions import PayloadTooBig
from websockets.frames import CloseCode as WsCloseCode
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import Protocol, State
from websockets.server import ServerProtocol

from .client_frames import Scan, scan, unmask
from .keepalive import Keepalive
from .settings import Settings
from .shared_headers import shared_headers
from .socket_front import flat_app
from .socket_waits import ReceiveQueue, WaitFlag

__all__ = [
    "CLOSE_STALL_SECONDS",
    "MAX_REQUEST_HEAD_BYTES",
    "SOCKET_LOG",
    "ConnectionHandle",
    "HttpProtocol",
    "PendingRequests",
    "TransportLimits",
    "WebSocketProtocol",
    "aborter",
    "authenticated",
    "binary_frame",
    "binary_writer",
    "protocols",
]

log = logging.getLogger("syncd.transport")

# A request line and headers together; a browser's upgrade with a long ?token= or cookies fits.
MAX_REQUEST_HEAD_BYTES = 64 * 1024
# A closing connection whose unsent bytes have not shrunk for this long is aborted.
CLOSE_STALL_SECONDS = 10.0
# After refusing an oversized frame: how long we keep reading (and discarding) so that the close
# frame is not lost to a TCP reset, waiting for the client to close its side.
REFUSAL_LINGER_SECONDS = 5.0
TOO_LARGE = 4413  # DESIGN.md §1.4: message over the limit
PONG_FRAME = 0x8A  # FIN set, no reserved bits, opcode 10

_SCOPE_KEY = "syncd.transport"

# uvicorn's WebSocket protocol (and websockets' under it) logs here instead of "uvicorn.error"; its
# level is WARNING unless syncd runs at debug (server.uvicorn_config), so one socket opened costs
# no log line.
SOCKET_LOG = logging.getLogger("syncd.sockets")


@dataclass(frozen=True)
class TransportLimits:
    request_timeout_seconds: float
    max_pending_per_address: int  # 0: no bound
    max_unauthenticated_message_bytes: int
    max_message_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> TransportLimits:
        return cls(
            request_timeout_seconds=settings.request_timeout_seconds,
            max_pending_per_address=settings.max_pending_per_address,
            max_unauthenticated_message_bytes=min(
                settings.max_unauthenticated_message_bytes, settings.max_message_bytes
            ),
            max_message_bytes=settings.max_message_bytes,
        )


def protocols(settings: Settings) -> tuple[type[HttpProtocol], type[WebSocketProtocol]]:
    """The ``http`` and ``ws`` classes for ``uvicorn.Config``, sharing one count of pending
    requests (one pair per server)."""
    limits = TransportLimits.from_settings(settings)
    pending = PendingRequests(limits.max_pending_per_address, limits.request_timeout_seconds)
    ws = type(
        "SyncdWebSocketProtocol", (WebSocketProtocol,), {"limits": limits, "keepalive": Keepalive()}
    )
    http = type("SyncdHttpProtocol", (HttpProtocol,), {"limits": limits, "pending": pending})
    return http, ws


# -- what the application may ask of its connection -------------------------------------------


class ConnectionHandle:
    """One WebSocket connection as the application may touch it below ASGI."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: WebSocketProtocol) -> None:
        self._protocol = protocol

    def authenticated(self) -> None:
        """The client proved who it is: accept frames up to ``max_message_bytes`` from now on."""
        self._protocol.raise_frame_limit()

    def abort(self) -> None:
        """Drop the TCP connection now (a reset), whatever is still buffered for the client."""
        self._protocol.abort()


def _handle(connection: HTTPConnection) -> ConnectionHandle | None:
    handle = connection.scope.get("extensions", {}).get(_SCOPE_KEY)
    return handle if isinstance(handle, ConnectionHandle) else None


def authenticated(connection: HTTPConnection) -> None:
    """Tell the transport that this WebSocket authenticated (raises its frame limit)."""
    handle = _handle(connection)
    if handle is not None:
        handle.authenticated()


def binary_writer(connection: HTTPConnection) -> Callable[[bytes], bool] | None:
    """The function that writes a binary message below ASGI when the connection takes it
    without waiting (module docstring), or None (another server). It answers False, having
    written nothing, wherever the ASGI send must carry the message instead."""
    handle = _handle(connection)
    # The protocol's own method, not the handle's: this runs once per peer per broadcast.
    return handle._protocol.write_binary_now if handle is not None else None


# The last frame built, by the identity of its payload: a broadcast hands the same bytes object
# to every raw-socket peer in turn, so it is framed once (bytes are immutable, and the reference
# held here keeps the id from being reused).
_last_framed: tuple[bytes, bytes] = (b"", b"\x82\x00")


def binary_frame(payload: bytes) -> bytes:
    """``payload`` as one unmasked, final, binary WebSocket frame (RFC 6455 §5.2), as a server
    sends it."""
    global _last_framed
    last = _last_framed
    if last[0] is payload:
        return last[1]
    size = len(payload)
    if size < 126:
        head = bytes((0x82, size))
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x82, 126, size)
    else:
        head = struct.pack("!BBQ", 0x82, 127, size)
    frame = head + payload
    if type(payload) is bytes:  # never a buffer that could change under the cache
        _last_framed = (payload, frame)
    return frame


def aborter(connection: HTTPConnection) -> Callable[[], None] | None:
    """The function that drops this WebSocket's TCP connection at once, or None (another
    server, e.g. a test client)."""
    handle = _handle(connection)
    return handle.abort if handle is not None else None


# -- connections being opened ------------------------------------------------------------------


class PendingRequests:
    """Connections whose request is still arriving, counted per client address.

    Each one holds an :class:`Opening` until its request head is complete (for a WebSocket:
    until the handshake is answered); an opening that outlives ``timeout`` aborts its
    connection.
    """

    def __init__(self, per_address: int, timeout: float) -> None:
        self.per_address = per_address
        self.timeout = timeout
        self._by_address: dict[str, int] = {}

    def open(self, address: str | None, transport: asyncio.Transport) -> Opening | None:
        """A slot for one more request from ``address``; None when the address has its bound."""
        key = address or ""
        count = self._by_address.get(key, 0)
        if self.per_address and address is not None and count >= self.per_address:
            return None
        self._by_address[key] = count + 1
        return Opening(self, key, transport)

    def _release(self, key: str) -> None:
        count = self._by_address.get(key, 0) - 1
        if count > 0:
            self._by_address[key] = count
        else:
            self._by_address.pop(key, None)


class Opening:
    """One connection's slot in :class:`PendingRequests` and its deadline."""

    __slots__ = ("_key", "_pending", "_timer", "_transport")

    def __init__(self, pending: PendingRequests, key: str, transport: asyncio.Transport) -> None:
        self._pending: PendingRequests | None = pending
        self._key = key
        self._transport = transport
        self._timer = asyncio.get_running_loop().call_later(pending.timeout, self._expired)

    def _expired(self) -> None:
        log.debug("%s: request not complete in time; closing", self._key)
        self.close()
        self._transport.abort()

    def close(self) -> None:
        """The request arrived (or the connection went away): free the slot (idempotent)."""
        if self._pending is not None:
            self._timer.cancel()
            self._pending._release(self._key)
            self._pending = None


# -- a transport whose close cannot hang ---------------------------------------------------------


class BoundedCloseTransport:
    """The connection's transport, except that :meth:`close` cannot hang.

    ``asyncio.Transport.close()`` flushes the write buffer before it releases the socket, so a
    client that stopped reading would keep the file descriptor (and the buffer) for as long as it
    keeps its TCP connection. Here a close whose buffer has not shrunk for
    :data:`CLOSE_STALL_SECONDS` becomes an abort. Everything else is the transport's own.
    """

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._watch: asyncio.TimerHandle | None = None
        # Every frame goes through here: bound once, not looked up through __getattr__ each time.
        self.write = transport.write
        self.is_closing = transport.is_closing

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def close(self) -> None:
        self._transport.close()
        if self._watch is None:
            self._watch_close(None)

    def _watch_close(self, last: int | None) -> None:
        size = self._transport.get_write_buffer_size()
        if size == 0:  # everything went out; asyncio releases the socket by itself
            self._watch = None
            return
        if last is not None and size >= last:
            log.debug(
                "closing connection: client read nothing for %.0f s; aborting", CLOSE_STALL_SECONDS
            )
            self._watch = None
            self._transport.abort()
            return
        self._watch = asyncio.get_running_loop().call_later(
            CLOSE_STALL_SECONDS, self._watch_close, size
        )

    def reset(self) -> None:
        """Abort with a TCP reset: the kernel drops what it still holds for the client too."""
        sock = self._transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # already gone
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._transport.abort()


def _guarded(transport: asyncio.BaseTransport) -> BoundedCloseTransport:
    if isinstance(transport, BoundedCloseTransport):
        return transport
    return BoundedCloseTransport(transport)  # type: ignore[arg-type]


# -- HTTP ------------------------------------------------------------------------------------


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
        guarded = _guarded(transport)
        super().connection_made(guarded)  # type: ignore[arg-type]
        if not self._begin_opening():
            log.debug("%s: too many connections being opened; closed", self._address())
            self._discarding = True
            guarded.abort()

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


# -- WebSocket -------------------------------------------------------------------------------


class _FrameLimitedServerProtocol(ServerProtocol):
    """``websockets``' server protocol, for a request parsed by the HTTP layer, refusing
    oversized frames with 4413 instead of 1009.

    The frame parser checks each frame header against ``max_message_size`` (minus what earlier
    fragments of the message took) before reading the payload; the limit is read anew for every
    frame, so raising it takes effect with the next one.
    """

    def parse(self) -> _LazyParser:  # type: ignore[override]
        # The request was parsed and bounded by httptools: only frames follow.
        return _LazyParser(self)

    def fail(self, code: int, reason: str = "") -> None:  # type: ignore[override]
        if code == WsCloseCode.MESSAGE_TOO_BIG:
            code, reason = TOO_LARGE, f"message over {self.max_message_size} bytes"
        super().fail(code, reason)


class _LazyParser:
    """``websockets``' frame parser (``Protocol.parse``, a generator), made when it is first
    given a frame: the WebSocket protocol reads binary messages and pongs itself, so an idle
    socket's parser would be two suspended generator frames (~0.45 KiB) it never needed.
    ``Protocol`` steps it with ``next()`` after feeding its reader; the first step, in
    ``Protocol.__init__``, finds nothing to parse."""

    __slots__ = ("_parser", "_protocol")

    def __init__(self, protocol: Protocol) -> None:
        self._protocol = protocol
        self._parser: Generator[None, None, None] | None = None

    def __iter__(self) -> _LazyParser:
        return self

    def __next__(self) -> None:
        parser = self._parser
        if parser is None:
            if not self._protocol.reader.buffer and not self._protocol.reader.eof:
                return None  # as the parser would: it waits for data
            # Started with data already fed, it parses that until it waits for more.
            parser = self._parser = Protocol.parse(self._protocol)
        return next(parser)


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol with syncd's frame limits (module docstring)."""

    # Every attribute uvicorn's protocol and this one set, as slots: its ~45 attributes are too
    # many for a key-sharing instance dict, so each socket had a dict of its own (1.6 KiB; a
    # slot is 8 bytes). The base class keeps __dict__, so an attribute missing here still works,
    # only at a dict's price (tests/test_transport.py checks that none is).
    __slots__ = (
        # this class's
        "_opening", "_partial", "_partial_needs", "_ping_tick", "_refused", "_slow",
        # uvicorn's WebSocketsSansIOProtocol (__init__, connection_made, handle_connect)
        "app", "app_state", "asgi_version", "client", "close_sent", "close_timeout",
        "close_timer", "config", "conn", "connections", "curr_msg_data_type",
        "default_headers", "disconnected", "frames", "handshake_complete",
        "handshake_initiated", "initial_response", "last_ping_rtt", "logger", "loop",
        "pending_ping_payload", "ping_interval", "ping_sent_at", "ping_timeout", "ping_timer",
        "pong_timer", "queue", "read_paused", "request", "response", "root_path", "scheme",
        "scope", "server", "tasks", "transport", "writable",
    )  # fmt: skip

    limits: ClassVar[TransportLimits]
    keepalive: ClassVar[Keepalive]
    # The loaded application and what this protocol awaits instead (socket_front.flat_app).
    _flat_app: ClassVar[tuple[object, Callable[..., Any]] | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        flat = type(self)._flat_app
        if flat is None or flat[0] is not self.app:
            flat = type(self)._flat_app = (self.app, flat_app(self.app))
        self.app = flat[1]  # type: ignore[assignment]
        # uvicorn logs a line per WebSocket opened (accepted, 403, ...) at INFO: an access log,
        # which syncd keeps off for HTTP too (server.py, access_log=False); errors still show.
        self.logger = SOCKET_LOG
        # What an idle socket holds (syncd/socket_waits.py): no deques until someone waits.
        self.queue = ReceiveQueue()  # type: ignore[assignment]
        self.writable = WaitFlag(True)  # type: ignore[assignment]
        self._ping_tick = 0  # the keepalive tick that sent the ping awaiting its pong
        self.conn = _FrameLimitedServerProtocol(
            extensions=self.conn.available_extensions,
            max_size=self.limits.max_unauthenticated_message_bytes,
            # websockets logs "connection open" / "connection closed" at INFO: a line and a
            # record per socket, so it logs where uvicorn's protocol does (SOCKET_LOG).
            logger=SOCKET_LOG,
        )
        self._opening: Opening | None = None
        self._refused = False  # an oversized frame was refused: discarding until the end
        # Frames are read by _receive_messages until websockets has been given anything but
        # whole frames (then _slow, for good); _partial holds a frame not all arrived.
        self._slow = False
        self._partial = bytearray()
        self._partial_needs = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(_guarded(transport))

    def adopt(
        self,
        transport: asyncio.BaseTransport,
        server: tuple[str, int | None] | None,
        client: tuple[str, int] | None,
    ) -> None:
        """``connection_made`` for a connection the HTTP protocol upgrades: its addresses as that
        protocol read them, instead of two system calls (getsockname, getpeername) again."""
        self.connections.add(self)
        self.transport = _guarded(transport)  # type: ignore[assignment]
        self.server, self.client = server, client
        self.scheme = "wss" if transport.get_extra_info("sslcontext") else "ws"
        if self.logger.level <= TRACE_LOG_LEVEL:
            prefix = f"{client[0]}:{client[1]} - " if client else ""
            self.logger.log(TRACE_LOG_LEVEL, "%sWebSocket connection made", prefix)

    def start(self, request: Request, rest: bytes, opening: Opening | None) -> None:
        """Begin with a request the HTTP protocol parsed; ``opening`` ends when we answer it."""
        self._opening = opening
        self.handle_connect(request)
        if rest:
            self.data_received(rest)

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if self.handshake_complete:  # refused by websockets (not a valid handshake)
            self._end_opening()
        else:
            scope = self.scope
            scope["extensions"][_SCOPE_KEY] = ConnectionHandle(self)  # type: ignore[index]
            # Kept as long as the socket: the headers every client sends alike, held once.
            scope["headers"] = shared_headers(scope["headers"])  # type: ignore[arg-type]

    def _end_opening(self) -> None:
        if self._opening is not None:
            self._opening.close()
            self._opening = None

    async def send(self, message: Any) -> None:
        try:
            await super().send(message)
        finally:
            if self.handshake_complete:  # accepted or refused: no longer being opened
                self._end_opening()
                # The handshake's request and response (their headers twice over) are not
                # read again; the scope keeps the request's headers for the application.
                self.request = self.response = None

    # Keepalive: one server-wide timer (syncd/keepalive.py) instead of uvicorn's per socket.

    def start_keepalive(self) -> None:
        self.keepalive.add(self)

    def stop_keepalive(self) -> None:
        self.keepalive.discard(self)
        super().stop_keepalive()

    def schedule_ping(self) -> None:
        pass  # the server-wide timer pings; nothing per socket to schedule

    def keepalive_tick(self, tick: int, ticks_to_fail: int | None) -> None:
        """One tick of the server's keepalive: a new ping, or 1011 for a ping unanswered for
        ``ticks_to_fail`` ticks."""
        if self.close_sent or self.transport.is_closing():
            self.keepalive.discard(self)
            return
        if self.pending_ping_payload is not None and ticks_to_fail is not None:
            if tick - self._ping_tick >= ticks_to_fail:
                self.keepalive.discard(self)
                self.keepalive_timeout()
            return
        self._ping_tick = tick
        self.pending_ping_payload = struct.pack("!I", random.getrandbits(32))
        self.ping_sent_at = self.loop.time()
        self.conn.send_ping(self.pending_ping_payload)
        self.transport.write(b"".join(self.conn.data_to_send()))

    def connection_lost(self, exc: Exception | None) -> None:
        self._end_opening()
        super().connection_lost(exc)

    def write_binary_now(self, payload: bytes) -> bool:
        """What uvicorn's ``send`` checks before it frames a message, then one write; False
        wherever ``send`` would wait or refuse (the caller then takes that path)."""
        if (
            self.close_sent
            or self.disconnected
            or not self.handshake_complete
            or self.initial_response is not None
            or not self.writable.is_set()
            or self.conn.state is not State.OPEN
            or self.transport.is_closing()
        ):
            return False
        self.transport.write(binary_frame(payload))
        return True

    def raise_frame_limit(self) -> None:
        self.conn.max_message_size = self.limits.max_message_bytes

    def abort(self) -> None:
        transport = self.transport
        if isinstance(transport, BoundedCloseTransport):
            transport.reset()
        else:
            transport.abort()

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        if not self._slow and conn.state is State.OPEN and conn.current_size is None:
            data = self._receive_messages(data)
            if not data:
                return
        # From here on websockets parses everything: what it is given may end inside a frame.
        self._slow = True
        self._parse(data)

    def _receive_messages(self, data: bytes) -> bytes:
        """Take whole binary messages out of ``data`` (``client_frames``); give every other
        frame, whole, to websockets; answer what websockets must parse from here on (b"" when
        nothing: a frame not all arrived waits in ``_partial``)."""
        if self._partial:
            # A big frame arrives in many reads: gather them, scan again only once it is whole.
            self._partial += data
            if len(self._partial) < self._partial_needs:
                return b""
            data, self._partial, self._partial_needs = bytes(self._partial), bytearray(), 0
        conn, pos, end = self.conn, 0, len(data)
        while pos < end:
            kind, start, stop = scan(data, pos, conn.max_message_size)
            if kind is Scan.MESSAGE:
                self._message(unmask(data, start, stop))
            elif kind is Scan.OTHER and data[pos] == PONG_FRAME and 0x80 <= data[pos + 1] <= 0xFD:
                # A whole, masked pong (a keepalive's answer): what websockets and uvicorn do
                # with one, without websockets' parser.
                self.handle_pong(Frame(Opcode.PONG, unmask(data, start, stop)))
            elif kind is Scan.OTHER:
                self._parse(data[pos:stop])
                if conn.parser_exc is not None:  # failed and answered: the rest is discarded
                    self._slow = True
                    return b""
                if conn.state is not State.OPEN or conn.current_size is not None:
                    return data[stop:]  # closing, or a fragmented message: websockets' from now
            elif kind is Scan.INCOMPLETE:
                self._partial = bytearray(data[pos:])  # at most the frame limit and a header
                self._partial_needs = stop - pos  # 0 until its header has arrived
                return b""
            else:  # TOO_LARGE: websockets refuses it from its header (4413)
                return data[pos:]
            pos = stop
        return b""

    def _message(self, payload: bytes) -> None:
        """What uvicorn does with a binary message, except that reading pauses only once the
        application is a message behind: pausing and resuming after every message costs two
        system calls each."""
        if self.close_sent:
            return  # past websocket.close, as uvicorn: discard, keep reading for the close reply
        queue = self.queue
        queue.put_nowait({"type": "websocket.receive", "bytes": payload})
        if not self.read_paused and queue.qsize() > 1:
            self.read_paused = True
            self.transport.pause_reading()

    def _parse(self, data: bytes) -> None:
        self.conn.receive_data(data)
        if self._refused:
            return  # the parser discards; we wait for the client to close
        self.handle_events()  # what arrived before a bad frame still counts
        exc = self.conn.parser_exc
        if exc is None:
            return
        if isinstance(exc, PayloadTooBig):
            self._refuse_oversized()
        else:
            self.handle_parser_exception()

    def _refuse_oversized(self) -> None:
        """Send the 4413 close frame that ``conn.fail`` queued, half-close, and keep reading (the
        parser discards) until the client closes too, at most :data:`REFUSAL_LINGER_SECONDS`."""
        self._refused = True
        self.stop_keepalive()
        if not self.handshake_complete:  # frames before the handshake: not a WebSocket client
            self.abort()
            return
        close = self.conn.close_sent
        code = close.code if close is not None else TOO_LARGE
        reason = close.reason if close is not None else ""
        log.info("%s: %s; closing %d", self.client[0] if self.client else "?", reason, code)
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        if not self.close_sent:
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        if self.close_timer is not None:
            self.close_timer.cancel()
        # run_asgi closes the transport only when no close timer is set.
        self.close_timer = self.loop.call_later(REFUSAL_LINGER_SECONDS, self.transport.abort)
