"""A Web Push service stand-in on 127.0.0.1 for tests: it records every request and answers
what it is told (201 by default; 410, 429 + Retry-After, … per endpoint path), and a browser's
subscription keys that can decrypt what it received (RFC 8291, aes128gcm)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from dataclasses import dataclass, field
from typing import Any

import http_ece
import jwt
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.servers import free_port


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class BrowserKeys:
    """What a browser makes when it subscribes: a P-256 key pair and a 16-byte auth secret."""

    private: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def p256dh(self) -> str:
        point = self.private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(point)

    def subscription(self, endpoint: str) -> dict[str, Any]:
        """The browser's ``PushSubscription.toJSON()``."""
        return {
            "endpoint": endpoint,
            "expirationTime": None,
            "keys": {"p256dh": self.p256dh, "auth": b64url(self.auth)},
        }

    def decrypt(self, body: bytes) -> dict[str, Any]:
        plain = http_ece.decrypt(
            body, private_key=self.private, auth_secret=self.auth, version="aes128gcm"
        )
        return json.loads(plain)


def verify_vapid(authorization: str, public_key: str, audience: str) -> dict[str, Any]:
    """Check ``Authorization: vapid t=JWT, k=KEY`` (RFC 8292): ``k`` is the daemon's key and the
    JWT is signed by it (ES256) for ``audience``. Returns the claims."""
    scheme, _, params = authorization.partition(" ")
    assert scheme == "vapid", authorization
    parts = dict(p.strip().split("=", 1) for p in params.split(","))
    assert parts["k"] == public_key
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(parts["k"]))
    return jwt.decode(parts["t"], key, algorithms=["ES256"], audience=audience)


class PushServiceStandIn:
    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.arrived: asyncio.Queue[Received] = asyncio.Queue()
        # path -> the answers to give, in order (status, headers); then 201
        self.answers: dict[str, list[tuple[int, dict[str, str]]]] = {}
        app = Starlette(routes=[Route("/{path:path}", self._push, methods=["POST", "GET"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def endpoint(self, name: str) -> str:
        return f"{self.origin}/push/{name}"

    async def _push(self, request: Request) -> Response:
        got = Received(request.url.path, dict(request.headers), await request.body())
        self.received.append(got)
        self.arrived.put_nowait(got)
        queue = self.answers.get(got.path)
        status, headers = queue.pop(0) if queue else (201, {})
        return Response(status_code=status, headers=headers)

    async def next(self, timeout: float = 15) -> Received:
        async with asyncio.timeout(timeout):
            return await self.arrived.get()

    async def start(self) -> PushServiceStandIn:
        self._task = asyncio.create_task(self._server.serve())
        async with asyncio.timeout(10):
            while not self._server.started:  # noqa: ASYNC110 - uvicorn's flag: it has no event
                await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await asyncio.wait_for(self._task, 10)
