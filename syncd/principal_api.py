"""A principal's data over HTTP (DESIGN.md §1.11): export and erasure; docs/privacy.md.

- ``GET /v1/principals/{sub}/export``: the principal itself or an admin of its tenant; a zip,
  streamed (``syncd/principal_export.py``).
- ``DELETE /v1/principals/{sub}``: admins of the tenant; optional JSON body
  ``{"identifiers": [str, ...]}`` (more exact strings of the identity); 200 with a summary
  (``syncd/erasure.py``).

401 without a valid token, 400 for a ``sub`` that is not a principal id (DESIGN §1.3) or a bad
body, 403 for anyone else. Both act within the caller's tenant only.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from storage.principal_data import PrincipalData

from .daemon import Daemon
from .docid import is_principal
from .erasure import erase_principal
from .http_api import HttpError, _handled, identify
from .principal_export import export_zip
from .request_body import parse_json, read_body
from .tokens import Identity, Role

__all__ = ["routes"]

_MAX_IDENTIFIERS = 100
_MAX_IDENTIFIER_CHARS = 256


def _caller(request: Request) -> tuple[Daemon, Identity, str]:
    daemon, identity = identify(request)
    sub = request.path_params["sub"]
    if not is_principal(sub):
        raise HttpError(400, "bad_request", "not a principal id: [A-Za-z0-9._@+-]{1,64}")
    return daemon, identity, sub


@_handled
async def export(request: Request) -> Response:
    daemon, identity, sub = _caller(request)
    if identity.sub != sub and identity.role is not Role.ADMIN:
        raise HttpError(403, "forbidden", "only the principal itself or an admin may export")
    # Read once before answering: a database that is away gets its 503 before any zip byte
    # (past the headers, a failure can only cut the zip short, which its reader then sees).
    await PrincipalData(daemon.store).owned(identity.tenant, sub)  # type: ignore[arg-type]
    return StreamingResponse(
        export_zip(daemon, identity.tenant, sub),
        media_type="application/zip",
        headers={"content-disposition": f'attachment; filename="syncd-export-{sub}.zip"'},
    )


@_handled
async def erase(request: Request) -> Response:
    daemon, identity, sub = _caller(request)
    if identity.role is not Role.ADMIN:
        raise HttpError(403, "forbidden", "only an admin of the tenant may erase a principal")
    body = await read_body(request, daemon.settings.max_json_body_bytes)
    identifiers = _identifiers(parse_json(body)) if body.strip() else []
    summary = await erase_principal(daemon, identity.tenant, sub, identifiers)
    return JSONResponse(summary)


def _identifiers(body: object) -> list[str]:
    shape = (
        f'body must be {{"identifiers": [up to {_MAX_IDENTIFIERS} strings of 3 to '
        f"{_MAX_IDENTIFIER_CHARS} characters]}}"
    )
    if not isinstance(body, dict) or set(body) - {"identifiers"}:
        raise HttpError(400, "bad_request", shape)
    found = body.get("identifiers", [])
    if not isinstance(found, list) or len(found) > _MAX_IDENTIFIERS:
        raise HttpError(400, "bad_request", shape)
    # At least 3 characters: each is also replaced inside other people's texts, and a one- or
    # two-letter string would mangle them.
    if not all(isinstance(i, str) and 3 <= len(i) <= _MAX_IDENTIFIER_CHARS for i in found):
        raise HttpError(400, "bad_request", shape)
    return list(dict.fromkeys(found))


def routes() -> list[Route]:
    return [
        Route("/v1/principals/{sub}/export", export, methods=["GET"]),
        Route("/v1/principals/{sub}", erase, methods=["DELETE"]),
    ]
