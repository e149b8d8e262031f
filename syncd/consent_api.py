"""Consent and audit over HTTP (DESIGN.md §1.11): consent per principal, the audit trail.

- ``PUT /v1/principals/{sub}/consent`` ``{"analytics": true, …}`` → 200 with every consent the
  principal has answered; ``GET`` the same. The principal itself or an admin of its tenant;
  anyone else 403. Purposes match ``[a-z0-9_-]{1,32}``, answers are JSON booleans; purposes a
  body does not name keep their answer; a purpose never answered is no consent.
- ``GET /v1/audit?since=ISO8601&service=SUB&after=CURSOR&limit=N`` (admins of the tenant) →
  ``{"records": [...], "next": CURSOR}``, oldest first; ``next`` is always present: pass it
  back as ``after`` (also to follow the trail as it grows).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from storage.audit import AuditRecord

from .access import Refusal
from .docid import is_principal
from .http_api import HttpError, _handled, http_error, identify
from .request_body import read_json
from .timefmt import iso_time
from .tokens import Identity, Role, is_purpose

__all__ = ["routes"]

MAX_PURPOSES = 64  # per request body: a consent form, not a data store
MAX_LIMIT = 1000
_CURSOR = re.compile(r"a[0-9a-f]{1,16}")


def _principal(request: Request, identity: Identity) -> str:
    """The ``{sub}`` of the path, if the caller may manage its consent (itself, or an admin)."""
    sub = request.path_params["sub"]
    if not is_principal(sub):
        raise HttpError(400, "bad_request", f"invalid principal {sub[:64]!r}")
    if identity.sub != sub and identity.role is not Role.ADMIN:
        raise HttpError(
            403, "forbidden", "only the principal itself or an admin may see or change consent"
        )
    return sub


def check_answers(body: object) -> dict[str, bool]:
    """A consent body: ``{purpose: bool}``; raises ``ValueError`` saying what is wrong."""
    if not isinstance(body, Mapping):
        raise ValueError('body must be a JSON object {"purpose": true|false, ...}')
    if len(body) > MAX_PURPOSES:
        raise ValueError(f"at most {MAX_PURPOSES} purposes per request")
    out: dict[str, bool] = {}
    for purpose, granted in body.items():
        if not is_purpose(purpose):
            raise ValueError(f"invalid purpose {str(purpose)[:40]!r}: expected [a-z0-9_-]{{1,32}}")
        if not isinstance(granted, bool):
            raise ValueError(f"consent to {purpose} must be true or false")
        out[purpose] = granted
    return out


@_handled
async def get_consent(request: Request) -> Response:
    daemon, identity = identify(request)
    sub = _principal(request, identity)
    return JSONResponse(await daemon.consents.of(identity.tenant, sub))


@_handled
async def put_consent(request: Request) -> Response:
    daemon, identity = identify(request)
    sub = _principal(request, identity)
    try:
        await daemon.access.refuse_erased(identity.tenant, sub)
    except Refusal as refusal:
        raise http_error(refusal) from refusal
    body = await read_json(request, daemon.settings.max_json_body_bytes)
    try:
        answers = check_answers(body)
    except ValueError as exc:
        raise HttpError(400, "bad_request", str(exc)) from exc
    return JSONResponse(await daemon.consents.set(identity.tenant, sub, answers))


def record_json(record: AuditRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "at": iso_time(record.at),
        "service": record.service,
        "purpose": record.purpose,
        "kind": record.kind,
        "documents": record.documents,
        "principals": record.principals,
    }


def _since(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise HttpError(
            400, "bad_request", f"since is not an ISO 8601 time: {value[:40]!r}"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # a time without offset is UTC, as on the wire
    return parsed.timestamp()


def _after(value: str | None) -> int:
    if not value:
        return 0
    if _CURSOR.fullmatch(value) is None or int(value[1:], 16) >= 2**63:
        raise HttpError(400, "bad_request", f"invalid cursor {value[:20]!r}")
    return int(value[1:], 16)


@_handled
async def list_audit(request: Request) -> Response:
    daemon, identity = identify(request)
    if identity.role is not Role.ADMIN:
        raise HttpError(403, "forbidden", "the audit trail is for admins")
    params = request.query_params
    service = params.get("service") or None
    if service is not None and not is_principal(service):
        raise HttpError(400, "bad_request", f"invalid service {service[:64]!r}")
    try:
        limit = int(params.get("limit", 100))
    except ValueError as exc:
        raise HttpError(400, "bad_request", "limit must be a number") from exc
    if not 1 <= limit <= MAX_LIMIT:
        raise HttpError(400, "bad_request", f"limit must be between 1 and {MAX_LIMIT}")
    after = _after(params.get("after"))
    records = await daemon.audit.list(
        identity.tenant,
        since=_since(params.get("since")),
        service=service,
        after=after,
        limit=limit,
    )
    last = records[-1].id if records else after
    return JSONResponse({"records": [record_json(r) for r in records], "next": f"a{last:x}"})


def routes() -> list[Route]:
    return [
        Route("/v1/principals/{sub}/consent", get_consent, methods=["GET"]),
        Route("/v1/principals/{sub}/consent", put_consent, methods=["PUT"]),
        Route("/v1/audit", list_audit, methods=["GET"]),
    ]
