"""Connections still being opened, counted per client address, each on a deadline.

A request head (request line and headers) must be complete within ``request_timeout_seconds``
of its first byte (or of the connection), however slowly it trickles in. An address already
opening ``max_pending_per_address`` connections (heads incomplete, or a WebSocket handshake not
yet answered) has any further connection closed at once, so a slowloris cannot use up the
process's file descriptors (DESIGN.md §1.4, docs/protocol.md "Limits"). The HTTP protocol
(``http_protocol.py``) takes a slot when a request begins; the WebSocket protocol
(``websocket_protocol.py``) frees it once the handshake is answered.
"""

from __future__ import annotations

import asyncio
import logging

__all__ = ["Opening", "PendingRequests"]

# Every module of syncd's uvicorn protocols logs under the one name they always had.
log = logging.getLogger("syncd.transport")


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
