"""pycrdt-websocket as its documentation serves it: stock `WebsocketServer` + `ASGIServer`.

In-memory (no YStore): a room lives while it has clients (`auto_clean_rooms=True`, the default)
and is lost when the last one leaves or the process exits. Rooms are named by the URL path, so
``ws://127.0.0.1:PORT/bench/doc-1`` is the room ``/bench/doc-1``.

Served by uvicorn on loopback with uvicorn's defaults (uvloop, httptools, ``--ws auto``, i.e.
the ``websockets`` implementation); ``--ws websockets-sansio`` gives it the WebSocket layer
syncd uses, to compare the sync servers rather than the WebSocket libraries::

    python benchmarks/peer_pycrdt_websocket.py --port 8790 [--ws websockets-sansio]
"""

from __future__ import annotations

import argparse
import asyncio
import logging

import uvicorn
from pycrdt.websocket import ASGIServer, WebsocketServer


async def serve(websocket_server: WebsocketServer, server: uvicorn.Server) -> None:
    async with websocket_server:
        await server.serve()


def main(host: str, port: int, log_level: str, ws: str) -> None:
    websocket_server = WebsocketServer()
    app = ASGIServer(websocket_server)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        ws=ws,  # type: ignore[arg-type]
    )
    server = uvicorn.Server(config)
    # The event loop `uvicorn.run` would pick (uvloop when installed).
    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        runner.run(serve(websocket_server, server))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="warning")
    parser.add_argument(
        "--ws", default="auto", help="uvicorn WebSocket implementation (auto = its default)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level.upper())
    main(args.host, args.port, args.log_level, args.ws)
