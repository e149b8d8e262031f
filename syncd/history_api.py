"""The history HTTP API (DESIGN.md §1.10; docs/history.md): versions, restore, rollback,
activity, the trash.

Reading (versions, their states, the activity) needs read access; creating versions, restoring
and rolling back need write access (viewers get 403), as ``GET`` and ``POST`` on the document;
restoring from the trash and purging are the owner's and admins'. Whatever cannot be seen
answers 404, as in the rest of the API.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from storage import DocKey, DocMeta
from storage.history import NAMED, HistoryGone, Version

from .access import Grant, Refusal, decide, parse_doc_id
from .bearer import bearer_token
from .daemon import Daemon
from .history import Nothing
from .http_api import (
    HttpError,
    _authorize,
    _handled,
    delete_doc,
    http_error,
    identify,
    json_view,
    meta_json,
)
from .request_body import read_json
from .timefmt import iso_time

__all__ = ["routes"]

_MAX_NAME = 200
_ACTIVITY_LIMIT = 1000


def version_json(version: Version) -> dict[str, Any]:
    return {
        "id": version.id,
        "name": version.name,
        "kind": version.kind,
        "seq": version.seq,
        "created_at": iso_time(version.created_at),
        "created_by": version.created_by,
    }


def _gone(exc: HistoryGone) -> HttpError:
    return HttpError(409, "history_gone", f"that history is no longer kept: {exc}")


def _vid(request: Request) -> int:
    raw = request.path_params["vid"]
    if not raw.isdigit() or len(raw) > 18:
        raise HttpError(404, "not_found", "no such version")
    return int(raw)


async def _live(request: Request) -> tuple[Daemon, Grant, DocMeta]:
    daemon, _, grant, meta = await _authorize(request)
    if meta is None:
        raise HttpError(404, "not_found", "no such document")
    return daemon, grant, meta


def _writer(grant: Grant) -> None:
    if grant.readonly:
        raise HttpError(403, "forbidden", "viewers cannot change the document's history")


# -- versions ----------------------------------------------------------------------------------


@_handled
async def list_versions(request: Request) -> Response:
    daemon, grant, _ = await _live(request)
    found = await daemon.history.versions(grant.key)
    if found is None:
        raise HttpError(404, "not_found", "no such document")
    return JSONResponse({"versions": [version_json(v) for v in found]})


@_handled
async def create_version(request: Request) -> Response:
    daemon, grant, _ = await _live(request)
    _writer(grant)
    body = await read_json(request, daemon.settings.max_json_body_bytes)
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name.strip() or len(name) > _MAX_NAME:
        raise HttpError(400, "bad_request", f'body must be {{"name": a string of 1-{_MAX_NAME}}}')
    room = daemon.rooms.get_loaded(grant.key)
    if room is not None:
        await room.drain()  # "as it is now": what this node received is committed first
    try:
        version = await daemon.history.create_version(grant.key, name, NAMED, grant.identity.sub)
    except KeyError as exc:
        raise HttpError(404, "not_found", "no such document") from exc
    return JSONResponse(version_json(version), status_code=201)


@_handled
async def delete_version(request: Request) -> Response:
    daemon, grant, _ = await _live(request)
    _writer(grant)
    vid = _vid(request)
    version = await daemon.history.version(grant.key, vid)
    if version is None:
        raise HttpError(404, "not_found", "no such version")
    if not grant.may_manage and version.created_by != grant.identity.sub:
        raise HttpError(403, "forbidden", "only its creator, the owner or an admin may delete it")
    await daemon.history.delete_version(grant.key, vid)
    return Response(status_code=204)


@_handled
async def version_state(request: Request) -> Response:
    daemon, grant, _ = await _live(request)
    try:
        state = await daemon.history.version_state(grant.key, _vid(request))
    except HistoryGone as exc:
        raise _gone(exc) from exc
    if state is None:
        raise HttpError(404, "not_found", "no such version")
    if "application/json" not in request.headers.get("accept", ""):
        return Response(state, media_type="application/octet-stream")
    content = await asyncio.to_thread(json_view, state)
    if content is None:
        raise HttpError(406, "not_acceptable", "a JSON view needs a known schema in meta.schema")
    return JSONResponse(content)


@_handled
async def restore_version(request: Request) -> Response:
    daemon, grant, _ = await _live(request)
    _writer(grant)
    try:
        seq = await daemon.history_ops.restore_version(grant.key, _vid(request), grant.identity.sub)
    except Nothing as exc:
        raise HttpError(404, "not_found", "no such version") from exc
    except HistoryGone as exc:
        raise _gone(exc) from exc
    except ValueError as exc:
        raise HttpError(409, "conflict", str(exc)) from exc
    return JSONResponse({"seq": seq})


# -- rollback and activity ---------------------------------------------------------------------


def _time(value: object, name: str) -> float:
    if not isinstance(value, str):
        raise HttpError(400, "bad_request", f"{name} must be an ISO 8601 time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise HttpError(400, "bad_request", f"{name} is not an ISO 8601 time: {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # a time without offset is UTC, as on the wire
    return parsed.timestamp()


@_handled
async def rollback(request: Request) -> Response:
    daemon, grant, _ = await _live(request)
    _writer(grant)
    body = await read_json(request, daemon.settings.max_json_body_bytes)
    if not isinstance(body, dict) or not isinstance(body.get("principal"), str):
        raise HttpError(400, "bad_request", 'body must be {"principal", "since", "until"}')
    since, until = _time(body.get("since"), "since"), _time(body.get("until"), "until")
    if not since < until:
        raise HttpError(400, "bad_request", "since must be before until")
    try:
        seq, undone = await daemon.history_ops.rollback(
            grant.key, body["principal"], since, until, grant.identity.sub
        )
    except Nothing as exc:
        raise HttpError(404, "not_found", "no such document") from exc
    except HistoryGone as exc:
        raise _gone(exc) from exc
    return JSONResponse({"seq": seq, "undone": undone})


@_handled
async def activity(request: Request) -> Response:
    daemon, grant, _ = await _live(request)
    query = request.query_params
    since = _time(query["since"], "since") if query.get("since") else None
    until = _time(query["until"], "until") if query.get("until") else None
    principal = query.get("principal") or None
    raw_limit = query.get("limit", "200")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= _ACTIVITY_LIMIT:
        raise HttpError(400, "bad_request", f"limit must be 1-{_ACTIVITY_LIMIT}")
    try:
        trail, more = await daemon.history_ops.activity(
            grant.key, since, until, principal, int(raw_limit)
        )
    except Nothing as exc:
        raise HttpError(404, "not_found", "no such document") from exc
    except HistoryGone as exc:
        raise _gone(exc) from exc
    return JSONResponse(
        {
            "activity": [
                {
                    "seq": e.seq,
                    "at": iso_time(e.at),
                    "principal": e.principal,
                    "origin": e.origin,
                    "changes": e.changes,
                }
                for e in trail
            ],
            "truncated": more,
        }
    )


# -- the trash ---------------------------------------------------------------------------------


async def _authorize_any(request: Request) -> tuple[Daemon, Grant, DocMeta | None]:
    """The caller's grant decided as if the document were live (trash and purge act on
    deleted ones); its metadata as stored."""
    daemon: Daemon = request.app.state.daemon
    try:
        doc = parse_doc_id(f"{request.path_params['owner']}/{request.path_params['name']}")
        identity = daemon.access.identify(bearer_token(request.headers, request.query_params))
        daemon.access.refuse_purpose_bound(identity)
        meta = await daemon.store.meta(DocKey(identity.tenant, str(doc)))
        grant = decide(identity, doc, replace(meta, deleted=False) if meta else None)
    except Refusal as refusal:
        raise http_error(refusal) from refusal
    return daemon, grant, meta


@_handled
async def restore_from_trash(request: Request) -> Response:
    daemon, grant, meta = await _authorize_any(request)
    if meta is None or not meta.deleted or meta.purged:
        raise HttpError(404, "not_found", "no such document in the trash")
    if not grant.may_manage:
        raise HttpError(403, "forbidden", "only the owner or an admin may restore it")
    restored = await daemon.trash.restore(grant.key, daemon.settings.trash_seconds)
    if restored is None:
        raise HttpError(404, "not_found", "no such document in the trash")
    daemon.restored_from_trash(restored)
    return JSONResponse(meta_json(restored))


async def delete_or_purge(request: Request) -> Response:
    """``DELETE /v1/docs/{id}``: to the trash; with ``?purge=true``, erased at once."""
    if request.query_params.get("purge", "").lower() in ("true", "1"):
        return await purge_doc(request)
    return await delete_doc(request)


@_handled
async def purge_doc(request: Request) -> Response:
    """Erase a document now, live or in the trash (owner, admin)."""
    daemon, grant, meta = await _authorize_any(request)
    if meta is None or meta.purged or not grant.may_manage:
        if meta is not None and not meta.purged and not grant.may_manage:
            raise HttpError(403, "forbidden", "only the owner or an admin may purge")
        raise HttpError(404, "not_found", "no such document")
    if not meta.deleted:
        await daemon.rooms.delete(grant.key)
    await daemon.trash.purge(grant.key)
    return Response(status_code=204)


@_handled
async def recreate(request: Request) -> Response:
    """``PUT /v1/docs/{id}``: create the document, also where a purged one was (a new epoch)."""
    daemon, grant, meta = await _authorize_any(request)
    if not grant.may_create:
        raise HttpError(403, "forbidden", "only the owner, a service or an admin may create it")
    if meta is not None and not meta.purged:
        raise HttpError(409, "conflict", "the document exists (or is in the trash)")
    created = await daemon.trash.recreate(grant.key)
    if created is None:
        raise HttpError(409, "conflict", "the document exists (or is in the trash)")
    return JSONResponse(meta_json(created), status_code=201)


@_handled
async def list_trash(request: Request) -> Response:
    daemon, identity = identify(request, purpose_bound_ok=False)
    owner = None if identity.privileged else identity.sub
    window = daemon.settings.trash_seconds
    entries = await daemon.trash.list(identity.tenant, owner)
    return JSONResponse(
        {
            "trash": [
                {
                    "id": e.key.name,
                    "deleted_at": iso_time(e.deleted_at),
                    "purge_at": iso_time(e.deleted_at + window) if math.isfinite(window) else None,
                }
                for e in entries
            ]
        }
    )


def routes() -> list[Route]:
    doc = "/v1/docs/{owner}/{name}"
    version = doc + "/versions/{vid}"
    return [
        Route(doc, recreate, methods=["PUT"]),
        Route(doc, delete_or_purge, methods=["DELETE"]),  # before http_api's DELETE
        Route(doc + "/versions", list_versions, methods=["GET"]),
        Route(doc + "/versions", create_version, methods=["POST"]),
        Route(version, delete_version, methods=["DELETE"]),
        Route(version + "/state", version_state, methods=["GET"]),
        Route(version + "/restore", restore_version, methods=["POST"]),
        Route(doc + "/rollback", rollback, methods=["POST"]),
        Route(doc + "/activity", activity, methods=["GET"]),
        Route(doc + "/restore", restore_from_trash, methods=["POST"]),
        Route("/v1/trash", list_trash, methods=["GET"]),
    ]
