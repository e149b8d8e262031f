"""Listing documents over HTTP: what a principal owns and what is shared with it.

``GET /v1/docs[?owned=1][&shared=1][&limit=N]`` → ``{"docs": [...], "truncated": bool}``, each
document ``{id, owner, role, mode, seq, size_bytes, created_at, updated_at}`` with ``role`` one
of ``owner``, ``editor``, ``viewer``, most recently updated first. Neither flag means both.
The list is always the caller's own (its ``sub`` in its tenant), services and admins included:
they may read every document, but "everything in the tenant" is not what a listing of *my*
documents is for (docs/protocol.md, "Listing documents").
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from storage.listing import ListedDoc, SqlListing

from .http_api import HttpError, _handled, identify
from .timefmt import iso_time

__all__ = ["routes"]

DEFAULT_LIMIT = 200
MAX_LIMIT = 1000
_FLAGS = {"1": True, "true": True, "0": False, "false": False}


def _flag(request: Request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if raw.lower() not in _FLAGS:
        raise HttpError(400, "bad_request", f"{name} must be 1 or 0 (true or false)")
    return _FLAGS[raw.lower()]


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise HttpError(400, "bad_request", f"limit must be 1-{MAX_LIMIT}")
    return int(raw)


def _json(doc: ListedDoc) -> dict[str, object]:
    return {
        "id": doc.key.name,
        "owner": doc.key.name.split("/", 1)[0],
        "role": doc.role,
        "mode": doc.mode,
        "seq": doc.seq,
        "size_bytes": doc.size_bytes,
        "created_at": iso_time(doc.created_at),
        "updated_at": iso_time(doc.updated_at),
    }


@_handled
async def list_docs(request: Request) -> Response:
    daemon, identity = identify(request)
    owned, shared = _flag(request, "owned"), _flag(request, "shared")
    if owned is None and shared is None:
        owned = shared = True
    docs, truncated = await SqlListing(daemon.store).list(
        identity.tenant,
        identity.sub,
        owned=bool(owned),
        shared=bool(shared),
        limit=_limit(request),
    )
    return JSONResponse({"docs": [_json(d) for d in docs], "truncated": truncated})


def routes() -> list[Route]:
    return [Route("/v1/docs", list_docs, methods=["GET"])]
