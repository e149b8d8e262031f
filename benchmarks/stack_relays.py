"""The relays of ``stack.py``: one minimal WebSocket relay per stack, each run as a subprocess.

A relay has no CRDT and no database: every binary message a client sends goes to every other
client connected on the same path (the path is the room). ``RelayServer`` starts one as
``python stack_relays.py STACK`` on the free port in ``STACK_PORT``; it runs until SIGTERM.
``stack.py`` says what each stack is and why it is measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from server_process import ServerProcess

STACKS = ("syncd-uvicorn", "uvicorn", "websockets", "picows")
# Opt-in (--stacks): syncd's stack on asyncio's own event loop, what uvloop is worth.
EXTRA_STACKS = ("syncd-uvicorn-asyncio",)


def raise_open_files_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ---------------------------------------------------------------------------- the servers


def serve(stack: str, port: int) -> None:
    """The relay in ``stack`` on 127.0.0.1:``port`` until SIGTERM (runs in the subprocess)."""
    raise_open_files_limit()
    if stack in ("syncd-uvicorn", "uvicorn", "syncd-uvicorn-asyncio"):
        serve_uvicorn(
            port, syncd=stack != "uvicorn", loop="asyncio" if "asyncio" in stack else "uvloop"
        )
    elif stack == "websockets":
        serve_websockets(port)
    elif stack == "picows":
        serve_picows(port)
    else:
        raise SystemExit(f"unknown stack {stack!r}")


def serve_uvicorn(port: int, syncd: bool, loop: str) -> None:
    import uvicorn
    from starlette.requests import HTTPConnection

    rooms: dict[str, set[tuple[object, object]]] = {}

    async def app(scope, receive, send):
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        if scope["type"] != "websocket":
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        write = None
        if syncd:
            from syncd.transport import binary_writer

            write = binary_writer(HTTPConnection(scope))
        me = (send, write)
        room = rooms.setdefault(scope["path"], set())
        room.add(me)
        try:
            while True:
                message = await receive()
                if message["type"] != "websocket.receive":
                    break
                data = message.get("bytes")
                if data is None:
                    continue
                for peer in tuple(room):
                    if peer is me:
                        continue
                    peer_write = peer[1]
                    if peer_write is not None and peer_write(data):
                        continue
                    with contextlib.suppress(Exception):
                        await peer[0]({"type": "websocket.send", "bytes": data})
        finally:
            room.discard(me)

    options: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "loop": loop,
        "ws_per_message_deflate": False,
        "ws_ping_interval": 20.0,
        "ws_ping_timeout": 20.0,
        "log_level": "warning",
        "access_log": False,
        "lifespan": "off",
        "timeout_graceful_shutdown": 1,
    }
    if syncd:
        from syncd import server_protocols
        from syncd.settings import Settings

        settings = Settings.from_env({})
        http, ws = server_protocols.protocols(settings)
        options.update(http=http, ws=ws, ws_max_size=settings.max_message_bytes)
    else:
        options.update(http="httptools", ws="websockets-sansio")
    uvicorn.Server(uvicorn.Config(app, **options)).run()  # type: ignore[arg-type]


def serve_websockets(port: int) -> None:
    import uvloop
    import websockets
    from websockets.asyncio.server import ServerConnection
    from websockets.asyncio.server import serve as ws_serve

    rooms: dict[str, set[ServerConnection]] = {}

    async def handler(ws: ServerConnection) -> None:
        room = rooms.setdefault(ws.request.path if ws.request else "/", set())
        room.add(ws)
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    websockets.broadcast([p for p in room if p is not ws], message)
        finally:
            room.discard(ws)

    async def main() -> None:
        async with ws_serve(handler, "127.0.0.1", port, compression=None, max_size=8 << 20):
            await asyncio.Event().wait()

    uvloop.run(main())


def serve_picows(port: int) -> None:
    import picows
    import uvloop

    rooms: dict[str, set[picows.WSTransport]] = {}

    class Relay(picows.WSListener):
        def __init__(self, path: str) -> None:
            self.room = rooms.setdefault(path, set())

        def on_ws_connected(self, transport: picows.WSTransport) -> None:
            self.transport = transport
            self.room.add(transport)

        def on_ws_disconnected(self, transport: picows.WSTransport) -> None:
            self.room.discard(transport)

        def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
            kind = frame.msg_type
            if kind == picows.WSMsgType.BINARY:
                data = frame.get_payload_as_bytes()
                for peer in self.room:
                    if peer is not transport:
                        peer.send(picows.WSMsgType.BINARY, data)
            elif kind == picows.WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()

    async def main() -> None:
        server = await picows.ws_create_server(
            lambda request: Relay(str(request.path)),
            "127.0.0.1",
            port,
            use_aiofastnet=False,
            websocket_handshake_timeout=10,
        )
        async with server:
            await server.serve_forever()

    uvloop.run(main())


class RelayServer(ServerProcess):
    def __init__(self, stack: str, workdir: Path) -> None:
        self.name = self.label = stack
        super().__init__(workdir, "ws://127.0.0.1:{port}/{name}")
        self.stack = stack

    def command(self) -> list[str]:
        return [sys.executable, str(Path(__file__).resolve()), self.stack]

    def env(self) -> dict[str, str]:
        return {**os.environ, "STACK_PORT": str(self.port)}


def stack_available(stack: str) -> str | None:
    """Why ``stack`` cannot run here, or None."""
    if stack == "picows":
        try:
            import picows  # noqa: F401
        except ImportError:
            return "picows is not importable here (pip install picows==2.3.1): skipped"
    return None


if __name__ == "__main__":
    serve(sys.argv[1], int(os.environ["STACK_PORT"]))
