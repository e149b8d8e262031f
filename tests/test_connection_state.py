"""What an idle WebSocket holds (issue 10, benchmarks/RESULTS.md "Connection cost"): the
server-wide keepalive (syncd/keepalive.py), the lean receive queue and writable flag
(syncd/socket_waits.py), and WebSocket endpoints called in front of Starlette
(syncd/socket_front.py). Each keeps the behaviour of what it replaces."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging

import httpx
import pycrdt
import pytest
import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from syncd.socket_front import SocketFront, flat_app, socket_front
from syncd.socket_waits import ReceiveQueue, WaitFlag
from syncd.websocket_protocol import SOCKET_LOG
from tests.support.raw_websocket import RawWebSocket, frame
from tests.support.servers import free_port
from tests.support.yclient import YClient

pytestmark = pytest.mark.anyio

PING, PONG, CLOSE = 0x9, 0xA, 0x8
WAIT = 10.0


# -- keepalive ---------------------------------------------------------------------------------


def _fast_pings(daemon) -> None:  # type: ignore[no-untyped-def]
    # Read by each connection's protocol when it is made; the shared timer takes the first's.
    daemon.server.config.ws_ping_interval = 0.1
    daemon.server.config.ws_ping_timeout = 0.1


async def test_a_ping_left_unanswered_closes_the_socket_1011(daemon):
    _fast_pings(daemon)
    ws = await RawWebSocket.connect(daemon.port, "/v1/sync")
    try:
        async with asyncio.timeout(WAIT):
            first = await ws.receive()
            assert first.opcode == PING and len(first.payload) == 4
            assert await ws.close_code() == 1011  # no pong: failed at a later tick
    finally:
        ws.abort()


async def test_a_pong_with_another_payload_answers_nothing(daemon):
    _fast_pings(daemon)
    ws = await RawWebSocket.connect(daemon.port, "/v1/sync")
    try:
        async with asyncio.timeout(WAIT):
            first = await ws.receive()
            assert first.opcode == PING
            await ws.send(frame(b"", opcode=PONG))  # unsolicited, empty: ignored
            await ws.send(frame(bytes(b ^ 0xFF for b in first.payload), opcode=PONG))
            assert await ws.close_code() == 1011
    finally:
        ws.abort()


async def test_answered_pings_keep_the_socket_open_and_one_timer_serves_all(daemon):
    _fast_pings(daemon)
    sockets = [await RawWebSocket.connect(daemon.port, "/v1/sync") for _ in range(3)]
    try:
        async with asyncio.timeout(WAIT):
            for _ in range(5):  # five ticks: any unanswered ping would have failed its socket
                for ws in sockets:
                    received = await ws.receive()
                    assert received.opcode == PING, received
                    await ws.send(frame(received.payload, opcode=PONG))
        protocols = [p for p in daemon.server.server_state.connections if hasattr(p, "keepalive")]
        assert len(protocols) == 3
        assert len(protocols[0].keepalive) == 3
        assert all(p.ping_timer is None and p.pong_timer is None for p in protocols)
    finally:
        for ws in sockets:
            ws.abort()


async def test_a_synced_pinged_socket_keeps_every_attribute_in_a_slot(daemon):
    """WebSocketProtocol.__slots__ covers every attribute set on a socket that synced a
    document, sent an update and answered a ping: its instance dict stays empty (one dict per
    socket is 1.6 KiB)."""
    _fast_pings(daemon)
    url = daemon.ws_url("alice/slotted", daemon.token("alice"))
    async with YClient(url) as writer, YClient(url) as reader:
        writer.doc.get("t", type=pycrdt.Text).insert(0, "hello")
        await reader.wait_until(lambda: str(reader.doc.get("t", type=pycrdt.Text)) == "hello")
        await asyncio.sleep(0.3)  # pings come and the clients' library answers them
        protocols = [p for p in daemon.server.server_state.connections if hasattr(p, "keepalive")]
        assert len(protocols) == 2
        for protocol in protocols:
            assert protocol.last_ping_rtt > 0  # a ping went and its pong came back
            assert vars(protocol) == {}
            # Binary messages and pongs were read without websockets' parser: never made.
            assert protocol.conn.parser._parser is None
            # Addresses as the HTTP protocol read them before the upgrade (adopt).
            assert protocol.server == ("127.0.0.1", daemon.port) and protocol.scheme == "ws"
            assert protocol.scope["client"] == protocol.client
        clients = {p.client for p in protocols}
        assert clients == {c.ws.local_address for c in (writer, reader)}


async def test_opening_a_socket_logs_no_line_at_info(daemon):
    """websockets' protocol under uvicorn's logs "connection open" at INFO: to syncd.sockets
    (WARNING unless syncd runs at debug), not to uvicorn.error."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append  # type: ignore[method-assign]
    uvicorn_error = logging.getLogger("uvicorn.error")
    level = uvicorn_error.level
    uvicorn_error.addHandler(handler)
    uvicorn_error.setLevel(logging.INFO)
    try:
        async with YClient(daemon.ws_url("alice/quiet", daemon.token("alice"))):
            (protocol,) = [
                p for p in daemon.server.server_state.connections if hasattr(p, "keepalive")
            ]
            assert protocol.conn.logger is SOCKET_LOG
    finally:
        uvicorn_error.removeHandler(handler)
        uvicorn_error.setLevel(level)
    assert [r.getMessage() for r in records] == []


# -- the receive queue and the writable flag ---------------------------------------------------


async def test_receive_queue_is_fifo_and_wakes_its_reader():
    queue: ReceiveQueue[int] = ReceiveQueue()
    reader = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)  # the reader is now waiting
    assert not reader.done()
    queue.put_nowait(1)
    queue.put_nowait(2)
    assert await reader == 1
    assert queue.qsize() == 1 and not queue.empty()
    assert await queue.get() == 2
    assert queue.empty()


async def test_receive_queue_hands_a_wakeup_on_when_its_reader_is_cancelled():
    queue: ReceiveQueue[str] = ReceiveQueue()
    first = asyncio.ensure_future(queue.get())
    second = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("x")  # wakes the first reader...
    first.cancel()  # ...which is cancelled before it runs
    async with asyncio.timeout(WAIT):
        assert await second == "x"
    assert first.cancelled()


async def test_wait_flag_waits_until_set():
    flag = WaitFlag(True)
    assert await flag.wait() is True
    flag.clear()
    waiter = asyncio.ensure_future(flag.wait())
    await asyncio.sleep(0)
    assert not waiter.done() and not flag.is_set()
    flag.set()
    async with asyncio.timeout(WAIT):
        assert await waiter is True
    assert flag.is_set()


# -- the socket front --------------------------------------------------------------------------


class _Tagging:
    """A route middleware: what it sets proves the request went through Starlette's route."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.app = app

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        scope["tagged"] = True
        await self.app(scope, receive, send)


async def _echo_scope(ws: WebSocket) -> None:
    await ws.accept()
    await ws.send_json(
        {
            "path_params": ws.path_params,
            "app": ws.app is ws.scope["router"]._front_app,
            "tagged": ws.scope.get("tagged", False),
        }
    )
    await ws.close()


def _app() -> Starlette:
    app = Starlette(
        routes=[
            Route("/plain", lambda request: PlainTextResponse("http")),
            WebSocketRoute("/ws/{name}", _echo_scope),
            WebSocketRoute("/mw", _echo_scope, middleware=[Middleware(_Tagging)]),
        ]
    )
    app.router._front_app = app  # type: ignore[attr-defined]
    return app


async def test_socket_front_calls_websocket_endpoints_with_the_scope_starlette_builds():
    app = _app()
    front = socket_front(app)
    assert isinstance(front, SocketFront)
    assert socket_front(None) is None  # type: ignore[arg-type]
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(front, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))  # fmt: skip
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(WAIT):
            while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to await
                await asyncio.sleep(0.01)
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws/alice") as ws:
                got = json.loads(await ws.recv())
            assert got == {"path_params": {"name": "alice"}, "app": True, "tagged": False}
            async with websockets.connect(f"ws://127.0.0.1:{port}/mw") as ws:
                assert json.loads(await ws.recv())["tagged"] is True  # through Starlette
            async with httpx.AsyncClient() as client:
                assert (await client.get(f"http://127.0.0.1:{port}/plain")).text == "http"
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, WAIT)


async def test_flat_app_rewrites_proxy_headers_and_returns_the_endpoints_coroutine():
    app = _app()
    proxied = ProxyHeadersMiddleware(socket_front(app), trusted_hosts="127.0.0.1")  # type: ignore[arg-type]
    flat = flat_app(proxied)
    scope = {
        "type": "websocket",
        "path": "/ws/bob",
        "root_path": "",
        "scheme": "ws",
        "client": ("127.0.0.1", 5000),
        "headers": [(b"x-forwarded-for", b"10.1.2.3"), (b"x-forwarded-proto", b"https")],
    }

    async def receive() -> dict[str, object]:
        return {}

    async def send(message: object) -> None:
        pass

    opened = flat(scope, receive, send)
    try:
        assert inspect.iscoroutine(opened) and opened.cr_code is _echo_scope.__code__
        assert scope["client"] == ("10.1.2.3", 0) and scope["scheme"] == "wss"  # uvicorn's rewrite
        assert scope["path_params"] == {"name": "bob"}
    finally:
        opened.close()  # type: ignore[attr-defined]
    untrusted = dict(scope, client=("192.0.2.1", 1), scheme="ws")
    flat(untrusted, receive, send).close()  # type: ignore[attr-defined]
    assert untrusted["client"] == ("192.0.2.1", 1) and untrusted["scheme"] == "ws"
    assert flat_app(app) is app  # not a SocketFront: as it is


async def test_no_asgi_layer_stays_suspended_under_an_open_socket(daemon):
    url = daemon.ws_url("alice/flat", daemon.token("alice"))
    async with YClient(url):
        (task,) = [t for t in asyncio.all_tasks() if t.get_coro().__qualname__.endswith("run_asgi")]
        stack, coro = [], task.get_coro()
        while coro is not None and hasattr(coro, "cr_code"):
            stack.append(coro.cr_code.co_qualname)
            coro = coro.cr_await
        # run_asgi awaits the endpoint itself: no ProxyHeadersMiddleware, no SocketFront frame.
        assert stack[:2] == ["WebSocketsSansIOProtocol.run_asgi", "doc_socket"], stack
