"""The ``http`` and ``ws`` protocol classes of one uvicorn server, and the limits they share.

syncd runs its own uvicorn protocols: uvicorn's ``httptools`` and ``websockets-sansio``
protocols, with the bounds a public server needs (DESIGN.md §1.4, docs/protocol.md "Limits"):

- ``http_protocol.py``: request heads on a deadline and bounded in size, WebSocket upgrades
  handed over as the request httptools parsed;
- ``pending_requests.py``: connections being opened, counted per client address (slowloris);
- ``websocket_protocol.py``: 4413 from a frame's header, the one-pass frame reader, pre-framed
  broadcast writes, idle sockets that hold little;
- ``bounded_close.py``: closes that cannot hang;
- ``transport.py``: what the application may ask of its connection (``authenticated``,
  ``binary_writer``, ``aborter``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .http_protocol import HttpProtocol
from .keepalive import Keepalive
from .pending_requests import PendingRequests
from .settings import Settings
from .websocket_protocol import WebSocketProtocol

__all__ = ["TransportLimits", "protocols"]


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
