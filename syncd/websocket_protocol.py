"""syncd's WebSocket protocol: uvicorn's ``websockets-sansio`` protocol with frame limits, a
one-pass frame reader and sockets that hold little while idle.

- **Frames.** A frame whose header announces more than the socket's limit is refused with
  **4413** from its header alone, before its payload is read (fragments count together): the
  limit is ``max_unauthenticated_message_bytes`` until the application calls
  ``transport.authenticated``, then ``max_message_bytes`` (DESIGN.md §1.4, docs/protocol.md
  "Limits").
- **Reading frames.** A whole binary message in one masked frame (what every Yjs client sends)
  is found and unmasked in one pass (``client_frames.py``) and queued for the application;
  every other frame goes to ``websockets`` whole, from a frame boundary, and once ``websockets``
  has had to parse anything else (a fragmented message, a close) it parses all that follows.
  Reading pauses once the application is a message behind, not after every message.
- **Broadcast writes.** :meth:`WebSocketProtocol.write_binary_now` is what
  ``transport.binary_writer`` hands the application: one pre-framed write when uvicorn's
  ``send`` would neither wait nor refuse (``transport.py``).
- **Idle sockets** hold as little as the protocol allows (benchmarks/RESULTS.md, "Connection
  cost"): the receive queue and the writable flag are ``socket_waits``' instead of asyncio's
  (no deques), the handshake's request and response are dropped once answered, and keepalive
  pings come from one timer per server (``keepalive.py``) instead of one per socket. The
  protocol's attributes are slots (no instance dict), pongs are read with binary messages so
  ``websockets``' parser is made only for another kind of frame, the headers clients send
  alike are held once (``shared_headers.py``), and the endpoint's coroutine is awaited with no
  ASGI layer suspended above it (``socket_front.flat_app``).
- **Closing** cannot hang (``bounded_close.py``); the application can drop a connection at once
  (``transport.aborter``: a reset).

The upgrade request arrives parsed by the HTTP protocol (``http_protocol.py``, :meth:`adopt`
and :meth:`start`); the handshake answered frees its slot in ``pending_requests``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, ClassVar

from uvicorn.logging import TRACE_LOG_LEVEL
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import PayloadTooBig
from websockets.frames import CloseCode as WsCloseCode
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import Protocol, State
from websockets.server import ServerProtocol

from .bounded_close import REFUSAL_LINGER_SECONDS, BoundedCloseTransport, guarded
from .client_frames import Scan, scan, unmask
from .keepalive import Keepalive
from .pending_requests import Opening
from .shared_headers import shared_headers
from .socket_front import flat_app
from .socket_waits import ReceiveQueue, WaitFlag
from .transport import SCOPE_KEY, ConnectionHandle, binary_frame

if TYPE_CHECKING:
    from .server_protocols import TransportLimits

__all__ = ["SOCKET_LOG", "TOO_LARGE", "WebSocketProtocol"]

# Every module of syncd's uvicorn protocols logs under the one name they always had.
log = logging.getLogger("syncd.transport")

TOO_LARGE = 4413  # DESIGN.md §1.4: message over the limit
PONG_FRAME = 0x8A  # FIN set, no reserved bits, opcode 10

# uvicorn's WebSocket protocol (and websockets' under it) logs here instead of "uvicorn.error"; its
# level is WARNING unless syncd runs at debug (server.uvicorn_config), so one socket opened costs
# no log line.
SOCKET_LOG = logging.getLogger("syncd.sockets")


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
    # only at a dict's price (tests/test_connection_state.py checks that none is).
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
        super().connection_made(guarded(transport))

    def adopt(
        self,
        transport: asyncio.BaseTransport,
        server: tuple[str, int | None] | None,
        client: tuple[str, int] | None,
    ) -> None:
        """``connection_made`` for a connection the HTTP protocol upgrades: its addresses as that
        protocol read them, instead of two system calls (getsockname, getpeername) again."""
        self.connections.add(self)
        self.transport = guarded(transport)  # type: ignore[assignment]
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
            scope["extensions"][SCOPE_KEY] = ConnectionHandle(self)  # type: ignore[index]
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
