"""One copy of the request headers that open WebSocket connections have in common.

Every WebSocket's ASGI scope keeps its request's headers for as long as the socket is open: a
tuple and two ``bytes`` per header, about 0.7 KiB for a handful of headers (benchmarks/RESULTS.md,
"Connection cost"). Most of them are the same for every client of a deployment (``upgrade:
websocket``, ``sec-websocket-version: 13``, the host, the origin, the browser's user agent and
languages), so :func:`shared_headers` gives a socket the one tuple already held for a header seen
before. Only the headers in :data:`SHARED_NAMES` are shared (never ``sec-websocket-key``, a
cookie or an authorization, which differ per client), and at most :data:`MAX_SHARED` distinct
ones, so clients sending ever new values cannot grow the table.
"""

from __future__ import annotations

__all__ = ["MAX_SHARED", "SHARED_NAMES", "shared_headers"]

Header = tuple[bytes, bytes]

SHARED_NAMES = frozenset(
    {
        b"accept-encoding",
        b"accept-language",
        b"cache-control",
        b"connection",
        b"host",
        b"origin",
        b"pragma",
        b"sec-websocket-extensions",
        b"sec-websocket-protocol",
        b"sec-websocket-version",
        b"upgrade",
        b"user-agent",
    }
)
MAX_SHARED = 1024

_shared: dict[Header, Header] = {}


def shared_headers(headers: list[Header]) -> list[Header]:
    """``headers`` (an ASGI scope's: lowercase names), in order, with each header of
    :data:`SHARED_NAMES` replaced by the equal tuple held already."""
    shared = _shared
    out = []
    for header in headers:
        if header[0] in SHARED_NAMES:
            held = shared.get(header)
            if held is None:
                if len(shared) < MAX_SHARED:
                    shared[header] = header
                held = header
            header = held
        out.append(header)
    return out
