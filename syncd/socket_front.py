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
from collections.abc import Awaitable, Callable, Generator
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Match, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

__all__ = ["SocketFront", "flat_app", "socket_front"]

Endpoint = Callable[[WebSocket], Awaitable[None]]


class SocketFront:
    """ASGI: WebSocket scopes straight to their endpoint function, anything else to ``app``."""

    __slots__ = ("app",)

    def __init__(self, app: Starlette) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.open(scope, receive, send)

    def open(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """What ``__call__`` awaits: the endpoint's coroutine, or the application's. Awaited in
        place of ``__call__`` (:func:`flat_app`), no frame of this class stays on the stack."""
        if scope["type"] == "websocket":
            endpoint = self._endpoint(scope)
            if endpoint is not None:
                return endpoint(WebSocket(scope, receive=receive, send=send))
        return self.app(scope, receive, send)

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


AsgiCall = Callable[[Scope, Receive, Send], Awaitable[None]]


def flat_app(app: Any) -> AsgiCall:
    """``app`` as uvicorn loaded it (``config.loaded_app``), for a WebSocket protocol to await:
    where it is a :class:`SocketFront`, alone or behind uvicorn's ``ProxyHeadersMiddleware``, a
    function that does what they do and returns the endpoint's coroutine, so that neither
    layer's coroutine stays suspended under every open socket (two frames, ~0.7 KiB). Any other
    application is returned as it is."""
    if isinstance(app, SocketFront):
        return app.open
    if isinstance(app, ProxyHeadersMiddleware) and isinstance(app.app, SocketFront):
        return _ProxiedFront(app.app, app.trusted_hosts)
    return app  # type: ignore[no-any-return]


class _Done:
    """An awaitable that is done at once (``await`` returns None without suspending)."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        return
        yield  # a generator function, finished before its first yield


_DONE = _Done()


def _done(scope: Scope, receive: Receive, send: Send) -> _Done:
    return _DONE


class _ProxiedFront:
    """uvicorn's proxy-header rewrite of the scope, then :meth:`SocketFront.open`."""

    __slots__ = ("_front", "_rewrite")

    def __init__(self, front: SocketFront, trusted_hosts: Any) -> None:
        self._front = front
        # uvicorn's own middleware in front of an application that returns at once: running its
        # coroutine to the end applies exactly its rewrite (X-Forwarded-For, -Proto) to a scope.
        rewrite = ProxyHeadersMiddleware(_done)  # type: ignore[arg-type]
        rewrite.trusted_hosts = trusted_hosts
        self._rewrite = rewrite

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        rewriting = self._rewrite(scope, receive, send)  # type: ignore[arg-type]
        try:
            rewriting.send(None)
        except StopIteration:
            pass
        else:  # never: the rewrite awaits nothing but _DONE
            rewriting.close()
            raise RuntimeError("uvicorn's ProxyHeadersMiddleware suspended")
        return self._front.open(scope, receive, send)
