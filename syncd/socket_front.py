"""WebSocket endpoints called in front of Starlette's stack: what an idle socket keeps alive.

An open WebSocket is one coroutine awaiting its next frame for as long as the socket lives, and
every ASGI layer between uvicorn and the endpoint stays suspended on that coroutine's stack:
Starlette's application, its error middleware, syncd's body guard, the exception middleware,
the router, the route and two exception wrappers: about 5 KiB of frames and closures per idle
connection, and their calls on every open (benchmarks/RESULTS.md, "Connection cost").

None of those layers does anything for a WebSocket that a plain endpoint function serves: the
error middleware and the body guard pass WebSocket scopes through; the exception wrappers
handle only ``HTTPException`` and ``WebSocketException`` (syncd registers no other handler, and
its socket endpoints raise neither), so whatever an endpoint raises reaches uvicorn exactly as
it does through them. :class:`SocketFront` therefore matches a WebSocket scope against the
application's routes, in the router's order, and when the route it finds is a
:class:`~starlette.routing.WebSocketRoute` with a function endpoint, calls that function
itself with the ``scope`` Starlette would have built (``app``, ``router``, ``path_params``,
``endpoint``). Every other scope (HTTP, lifespan, a WebSocket for a mount or for no route) goes
to the application unchanged.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.routing import Match, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

__all__ = ["SocketFront", "socket_front"]

Endpoint = Callable[[WebSocket], Awaitable[None]]


class SocketFront:
    """ASGI: WebSocket scopes straight to their endpoint function, anything else to ``app``."""

    __slots__ = ("app",)

    def __init__(self, app: Starlette) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            endpoint = self._endpoint(scope)
            if endpoint is not None:
                await endpoint(WebSocket(scope, receive=receive, send=send))
                return
        await self.app(scope, receive, send)

    def _endpoint(self, scope: Scope) -> Endpoint | None:
        """The endpoint function of the route the router would pick, with ``scope`` completed
        as the router completes it; None when that route is not a plain WebSocket function
        (or when no route matches: the application answers that)."""
        for route in self.app.router.routes:
            match, child_scope = route.matches(scope)
            if match is not Match.FULL:
                continue
            if not isinstance(route, WebSocketRoute) or not _plain_function(route):
                return None
            scope["app"] = self.app
            scope.setdefault("router", self.app.router)
            scope.update(child_scope)
            return route.endpoint  # type: ignore[return-value]
        return None


def _plain_function(route: WebSocketRoute) -> bool:
    """An endpoint that Starlette wraps in its session adapter only (no route middleware, not a
    ``WebSocketEndpoint`` class)."""
    endpoint = route.endpoint
    if not (inspect.isfunction(endpoint) or inspect.ismethod(endpoint)):
        return False
    # Route middleware wraps route.app in a middleware class; the plain adapter is a function.
    return inspect.isfunction(route.app)


def socket_front(app: ASGIApp) -> ASGIApp:
    """``app`` behind a :class:`SocketFront` when it is a Starlette application, else itself."""
    return SocketFront(app) if isinstance(app, Starlette) else app
