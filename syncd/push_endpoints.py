"""Which push endpoints the daemon may call, and the browser keys that come with them.

A push endpoint is a URL given by a client that the server will later POST to: left unchecked
it would let any user make the daemon reach internal addresses (a metadata service, Redis, an
admin port). So an endpoint must be ``https://`` on a public host: no IP literal of a private,
loopback, link-local, reserved or multicast range, no ``localhost``, and a name that resolves
only to public addresses. The check runs when a subscription is stored and again before each
push (a name may be re-pointed at an internal address later: DNS rebinding), and the address
each push connection reached is checked on its socket (``push_transport.py``).

``SYNCD_PUSH_ALLOW_ENDPOINTS`` (comma-separated URL prefixes) admits others, for tests and
private push services. A prefix is matched by its parts, never as bare text: the endpoint's
scheme, host and port must equal the prefix's, and its path must start with the prefix's path,
so ``http://127.0.0.1:9999`` admits neither ``http://127.0.0.1:99990/`` nor
``http://127.0.0.1:9999@elsewhere/``. No endpoint may carry user info.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["EndpointPolicy", "EndpointRefused", "check_keys", "is_public"]

MAX_ENDPOINT_LENGTH = 2048  # the column's size; real endpoints are 150-400 characters
RESOLVE_SECONDS = 5.0
_B64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


class EndpointRefused(ValueError):
    """A subscription the daemon will not call or cannot use; the message says why."""


@dataclass(frozen=True, slots=True)
class _Prefix:
    scheme: str
    host: str
    port: int | None
    path: str

    def admits(self, url: SplitResult) -> bool:
        return (
            url.scheme == self.scheme
            and (url.hostname or "") == self.host
            and _port(url) == self.port
            and url.path.startswith(self.path)
        )


def _port(url: SplitResult) -> int | None:
    try:
        return url.port or {"https": 443, "http": 80}.get(url.scheme)
    except ValueError:  # a port that is not a number, or out of range
        return None


class EndpointPolicy:
    """``check(endpoint)`` raises :class:`EndpointRefused` for an endpoint the daemon must not
    call. ``allow``: the ``SYNCD_PUSH_ALLOW_ENDPOINTS`` text."""

    def __init__(self, allow: str = "") -> None:
        self.prefixes: list[_Prefix] = []
        for raw in (p.strip() for p in allow.split(",")):
            if not raw:
                continue
            parts = urlsplit(raw)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                raise ValueError(f"SYNCD_PUSH_ALLOW_ENDPOINTS: {raw!r} is not an http(s) URL")
            self.prefixes.append(
                _Prefix(parts.scheme, parts.hostname, _port(parts), parts.path or "/")
            )

    def admitted(self, endpoint: str) -> bool:
        """Whether an allow-list prefix admits ``endpoint`` (no further checks then)."""
        url = urlsplit(endpoint)
        return "@" not in url.netloc and any(p.admits(url) for p in self.prefixes)

    async def check(self, endpoint: str) -> None:
        if not isinstance(endpoint, str) or not endpoint:
            raise EndpointRefused("endpoint must be a non-empty string")
        if len(endpoint) > MAX_ENDPOINT_LENGTH:
            raise EndpointRefused(f"endpoint longer than {MAX_ENDPOINT_LENGTH} characters")
        if any(c.isspace() or ord(c) < 0x21 or ord(c) > 0x7E for c in endpoint):
            raise EndpointRefused("endpoint must be a URL of printable ASCII characters")
        url = urlsplit(endpoint)
        if "@" in url.netloc:
            raise EndpointRefused("endpoint must not carry user info")
        if any(p.admits(url) for p in self.prefixes):
            return
        if url.scheme != "https":
            raise EndpointRefused("endpoint must be an https:// URL")
        host = (url.hostname or "").rstrip(".").lower()
        if not host:
            raise EndpointRefused("endpoint has no host")
        port = _port(url)
        if port is None:
            raise EndpointRefused("endpoint has an invalid port")
        if host == "localhost" or host.endswith(".localhost"):
            raise EndpointRefused("endpoint must be on a public host, not localhost")
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            _check_public(literal, host)
            return
        for address in await _resolve(host, port):
            _check_public(address, host)


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether the daemon may connect to ``address`` for a push: a global unicast address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    return address.is_global and not address.is_multicast


def _check_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address, host: str) -> None:
    if not is_public(address):
        raise EndpointRefused(f"endpoint host {host} is not a public address ({address})")


async def _resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_SECONDS):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as exc:
        raise EndpointRefused(f"endpoint host {host} does not resolve") from exc
    addresses = []
    for info in infos:
        raw = info[4][0]
        addresses.append(ipaddress.ip_address(raw.split("%", 1)[0]))  # drop an IPv6 zone id
    if not addresses:
        raise EndpointRefused(f"endpoint host {host} does not resolve")
    return addresses


def _b64url_bytes(value: object, name: str) -> bytes:
    if not isinstance(value, str) or not _B64URL.match(value):
        raise EndpointRefused(f"keys.{name} must be base64url text")
    try:
        return base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4))
    except (binascii.Error, ValueError) as exc:
        raise EndpointRefused(f"keys.{name} is not valid base64url") from exc


def check_keys(p256dh: object, auth: object) -> None:
    """The browser's keys (RFC 8291): ``p256dh`` an uncompressed P-256 point (65 bytes) on the
    curve, ``auth`` a 16-byte secret. Raises :class:`EndpointRefused`."""
    point = _b64url_bytes(p256dh, "p256dh")
    if len(point) != 65 or point[0] != 4:
        raise EndpointRefused("keys.p256dh must be an uncompressed P-256 point (65 bytes)")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError as exc:
        raise EndpointRefused("keys.p256dh is not a point on P-256") from exc
    if len(_b64url_bytes(auth, "auth")) != 16:
        raise EndpointRefused("keys.auth must be 16 bytes")
