"""The HTTP sessions pushes go out through (``syncd/push.py``).

Both never follow a redirect (a push service does not redirect; a redirect is how an endpoint
that passed the address check would reach an internal one) and ignore the environment's proxy
settings (the address check is about where the daemon itself connects).

The one for endpoints outside ``SYNCD_PUSH_ALLOW_ENDPOINTS`` also checks the address each
connection actually reached, on its socket, before a byte is sent: the check of the endpoint's
name before the push (``push_endpoints.py``) resolves it once and the connection resolves it
again, and a resolver that changes its answer in between (DNS rebinding) would otherwise steer
the push to an internal address.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from .push_endpoints import is_public

__all__ = ["PrivateAddress", "push_session", "reached_private_address"]


class PrivateAddress(NewConnectionError):
    """A connection for a push reached an address that is not public; it was closed unused."""


class _PublicOnlyConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        peer = sock.getpeername()[0]
        address = ipaddress.ip_address(peer.split("%", 1)[0])
        if not is_public(address):
            sock.close()
            raise PrivateAddress(self, f"{self.host} connected to {address}, not a public address")
        return sock


class _PublicOnlyPool(HTTPSConnectionPool):
    ConnectionCls = _PublicOnlyConnection


class _PublicOnlyAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"https": _PublicOnlyPool}


class _NoRedirects(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False
        # Not max_redirects = 0: requests still prepares the redirect's request for
        # ``response.next`` and would raise TooManyRedirects on every 3xx.

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs["allow_redirects"] = False
        return super().request(method, url, *args, **kwargs)


def push_session(*, public_only: bool) -> requests.Session:
    """A session for pushes; ``public_only`` for endpoints outside the allow-list."""
    session = _NoRedirects()
    if public_only:
        adapter = _PublicOnlyAdapter()
        session.mount("https://", adapter)  # plain http is refused before any such push
    return session


def reached_private_address(exc: BaseException) -> bool:
    """Whether a failed push failed because its connection reached a private address (not
    worth a retry: the name points inside)."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, PrivateAddress):
            return True
        pending.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])
        pending.extend(a for a in current.args if isinstance(a, BaseException))
    return False
