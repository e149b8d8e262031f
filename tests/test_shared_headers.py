"""syncd/shared_headers.py: headers that clients send alike are held once, in order and equal;
per-client ones (the handshake key, cookies, authorization) are never shared; the table is
bounded. And a WebSocket's scope gets them (syncd/websocket_protocol.py)."""

from __future__ import annotations

import pytest
import websockets

from syncd import shared_headers as module
from syncd.shared_headers import MAX_SHARED, shared_headers

pytestmark = pytest.mark.anyio


def header(name: str, value: str) -> tuple[bytes, bytes]:
    return (name.encode(), value.encode())  # new objects each time, as a parsed request has


def request(key: str) -> list[tuple[bytes, bytes]]:
    return [
        header("host", "sync.example:443"),
        header("upgrade", "websocket"),
        header("sec-websocket-key", key),
        header("cookie", "session=abc"),
        header("sec-websocket-version", "13"),
    ]


def test_common_headers_are_one_object_and_per_client_ones_their_own():
    first = shared_headers(request("key-1"))
    second_request = request("key-2")
    second = shared_headers(second_request)
    assert second == second_request  # equal, in order
    for mine, theirs in zip(first, second, strict=True):
        if mine[0] in (b"host", b"upgrade", b"sec-websocket-version"):
            assert mine is theirs
        else:
            assert mine is not theirs
    assert second[3] is second_request[3]  # a cookie stays the client's own
    assert (b"sec-websocket-key", b"key-2") not in module._shared.values()


def test_the_table_stops_growing_at_its_bound(monkeypatch):
    monkeypatch.setattr(module, "_shared", {})
    for i in range(MAX_SHARED + 50):
        shared_headers([(b"user-agent", b"agent %d" % i)])
    assert len(module._shared) == MAX_SHARED
    late = [(b"user-agent", b"agent %d" % (MAX_SHARED + 10))]
    assert shared_headers(late) == late  # still served, just not held


async def test_an_open_socket_holds_the_shared_headers(daemon):
    async with websockets.connect(daemon.ws_url("alice/h", daemon.token("alice"))):
        (protocol,) = [p for p in daemon.server.server_state.connections if hasattr(p, "keepalive")]
        headers = protocol.scope["headers"]
        upgrade = next(h for h in headers if h[0] == b"upgrade")
        assert module._shared[upgrade] is upgrade
