"""``POST /v1/dev/login {"name": "alice"}`` → ``{"token", "sub", "expires_at"}``.

For demos and local development only: anyone can become anyone. It exists only when the
daemon runs with ``--dev-login`` (off by default); production deployments hand out tokens from
their own identity system (see docs/configuration.md).
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .daemon import Daemon
from .docid import is_principal
from .request_body import BodyRefused, read_json
from .timefmt import iso_time

__all__ = ["dev_login"]

TTL = 12 * 3600


async def dev_login(request: Request) -> Response:
    daemon: Daemon = request.app.state.daemon
    try:
        body = await read_json(request, daemon.settings.max_json_body_bytes)
    except BodyRefused as refused:
        return refused.response()
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not is_principal(name):
        return JSONResponse(
            {"error": "bad_request", "message": "name must match [A-Za-z0-9._@+-]{1,64}"},
            status_code=400,
        )
    token = daemon.access.keys.mint(name, ttl=TTL)
    return JSONResponse({"token": token, "sub": name, "expires_at": iso_time(time.time() + TTL)})
