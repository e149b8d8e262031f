"""The ASGI application: routes and the lifespan that starts and stops the daemon."""

from __future__ import annotations

import contextlib
import logging
import mimetypes
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from storage import StoreUnavailable

from . import consent_api, feed, history_api, http_api, listing_api, principal_api, push_api
from .daemon import Daemon
from .dev_login import dev_login
from .doc_socket import doc_socket
from .request_body import UnreadBodyGuard
from .settings import Settings
from .sync_socket import sync_socket

__all__ = ["create_app"]

log = logging.getLogger("syncd")

# The built web app: a wheel carries it inside the package (setup.py's build hook copies
# pwa/dist there); a source checkout, editable installs included, has it in pwa/dist.
PACKAGED_WEB_APP = Path(__file__).resolve().parent / "web"
PWA_DIST = Path(__file__).resolve().parent.parent / "pwa" / "dist"

# StaticFiles types files through mimetypes, whose table comes partly from /etc/mime.types;
# Python 3.11 has no entry of its own for .webmanifest (slim images have no mime.types).
mimetypes.add_type("application/manifest+json", ".webmanifest")

_PLACEHOLDER = """<!doctype html><html lang="en"><meta charset="utf-8"><title>syncd</title>
<body style="font-family:system-ui;max-width:40rem;margin:3rem auto;line-height:1.5">
<h1>syncd is running</h1><p>Documents sync at <code>ws://HOST:PORT/v1/docs/OWNER/NAME</code>.
The web app is not built yet (<code>npm run build</code> in <code>pwa/</code>).</p></body></html>
"""


async def healthz(request: Request) -> Response:
    daemon: Daemon = request.app.state.daemon
    try:
        await daemon.store.ping()
    except StoreUnavailable as exc:
        return JSONResponse({"status": "unavailable", "database": str(exc)}, status_code=503)
    return JSONResponse(
        {
            "status": "ok",
            "database": "ok",
            # A node that cannot reach Redis still commits durably: 200, and it says so
            # (docs/deployment.md: draining every node for a Redis outage would be worse).
            "broker": daemon.broker.state.value,
            "documents": len(daemon.rooms),
            "connections": len(daemon.sockets),
        }
    )


async def metrics(request: Request) -> Response:
    daemon: Daemon = request.app.state.daemon
    return Response(daemon.metrics.render(), media_type="text/plain; version=0.0.4")


def web_app_dir() -> Path | None:
    """Where the built web app is: the installed package first, then a checkout's pwa/dist."""
    for candidate in (PACKAGED_WEB_APP, PWA_DIST):
        if (candidate / "index.html").is_file():
            return candidate
    return None


async def placeholder(request: Request) -> Response:
    return HTMLResponse(_PLACEHOLDER)


def create_app(settings: Settings, daemon: Daemon | None = None) -> Starlette:
    daemon = daemon or Daemon(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await daemon.start()
        try:
            yield
        finally:
            await daemon.stop()

    routes: list[Route | WebSocketRoute | Mount] = [
        Route("/healthz", healthz),
        Route("/metrics", metrics),
        WebSocketRoute("/v1/docs/{owner}/{name}", doc_socket),
        WebSocketRoute("/v1/sync", sync_socket),
        Route("/v1/feed", feed.feed_http, methods=["GET"]),
        WebSocketRoute("/v1/feed", feed.feed_socket),
        *history_api.routes(),  # first: its DELETE of a document also purges
        *http_api.routes(),
        *listing_api.routes(),
        *consent_api.routes(),
        *principal_api.routes(),
        *push_api.routes(),
    ]
    if settings.dev_login:
        routes.append(Route("/v1/dev/login", dev_login, methods=["POST"]))
    web_app = web_app_dir()
    if web_app is not None:
        routes.append(Mount("/", StaticFiles(directory=web_app, html=True), name="pwa"))
    else:
        routes.append(Route("/", placeholder))
    # A refused body up to twice the largest accepted one is drained (its sender then reads the
    # 413); a larger or chunked unread body closes its connection instead (request_body.py).
    guard = Middleware(UnreadBodyGuard, drain_limit=2 * settings.max_message_bytes)
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[guard])
    app.state.daemon = daemon
    return app
