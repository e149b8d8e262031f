"""What the application may ask of its WebSocket connection below ASGI.

syncd runs its own uvicorn protocols (``server_protocols.py``: ``http_protocol.py``,
``websocket_protocol.py``, with ``pending_requests.py`` and ``bounded_close.py``); this module
is the part of them the endpoints touch:

- **Frame limit.** A frame over the socket's limit is refused with 4413 from its header; the
  limit is ``max_unauthenticated_message_bytes`` until the application calls
  :func:`authenticated`, then ``max_message_bytes``.
- **Broadcast writes.** :func:`binary_writer` writes a binary message straight to the socket as
  one pre-framed write when the connection can take it at once (open, not paused by the client's
  TCP window): the ASGI ``send``, uvicorn's state checks and ``websockets``' frame objects cost
  more than the write itself when one update goes to fifty peers. Anything else (a paused
  transport, a close under way) answers False and the caller takes the ASGI path, so order and
  back-pressure stay the ASGI path's. Frames are never compressed (per-message deflate is off,
  server.py).
- **Aborting.** :func:`aborter` lets the application drop a connection at once (a slow reader
  that does not take its close frame).

The application reaches its connection through a :class:`ConnectionHandle` that the WebSocket
protocol puts in the ASGI scope (``scope["extensions"]["syncd.transport"]``); under another
server the functions below do nothing.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

if TYPE_CHECKING:
    from .websocket_protocol import WebSocketProtocol

__all__ = [
    "SCOPE_KEY",
    "ConnectionHandle",
    "aborter",
    "authenticated",
    "binary_frame",
    "binary_writer",
]

# Where the WebSocket protocol puts the connection's handle: scope["extensions"][SCOPE_KEY].
SCOPE_KEY = "syncd.transport"


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
    handle = connection.scope.get("extensions", {}).get(SCOPE_KEY)
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
