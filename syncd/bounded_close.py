"""Closes that cannot hang: a connection's transport whose close ends, and how long a refusal
lingers.

asyncio's ``close()`` waits until the client has read everything buffered, which a client that
stopped reading never does; a closing connection whose buffer does not shrink for
:data:`CLOSE_STALL_SECONDS` is aborted. Both of syncd's uvicorn protocols (``http_protocol.py``,
``websocket_protocol.py``) run on a :class:`BoundedCloseTransport`, and after refusing a request
or a frame they keep reading for at most :data:`REFUSAL_LINGER_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from typing import Any

__all__ = ["CLOSE_STALL_SECONDS", "REFUSAL_LINGER_SECONDS", "BoundedCloseTransport", "guarded"]

# Every module of syncd's uvicorn protocols logs under the one name they always had.
log = logging.getLogger("syncd.transport")

# A closing connection whose unsent bytes have not shrunk for this long is aborted.
CLOSE_STALL_SECONDS = 10.0
# After refusing (a request head over its bound, an oversized frame): how long we keep reading
# (and discarding) so that the answer or close frame is not lost to a TCP reset, waiting for the
# client to close its side.
REFUSAL_LINGER_SECONDS = 5.0


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


def guarded(transport: asyncio.BaseTransport) -> BoundedCloseTransport:
    """``transport`` as a :class:`BoundedCloseTransport` (itself, when it already is one: an
    upgraded connection keeps the HTTP protocol's)."""
    if isinstance(transport, BoundedCloseTransport):
        return transport
    return BoundedCloseTransport(transport)  # type: ignore[arg-type]
