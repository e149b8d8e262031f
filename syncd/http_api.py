"""The documents HTTP API (DESIGN.md §1.6). JSON errors: ``{"error": code, "message": text}``.

A document the caller may not see answers 404, exactly like one that does not exist, so the
API never reveals that someone else's private document exists.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pycrdt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crdt.protocol import ProtocolError
from crdt.replay import replay
from crdt.schemas import Canvas, Journal
from crdt.updates import validate_update
from crdt.yrs_guard import apply_update
from storage import DocMeta, DocumentDeleted, LoadedDoc, StoreUnavailable

from .access import Grant, Refusal, RefusalReason, parse_doc_id, validate_access
from .bearer import bearer_token
from .daemon import Daemon
from .docid import DocId
from .origin import Origin
from .peer import CloseCode
from .request_body import BodyRefused, read_body, read_json
from .room import RoomClosed
from .rooms import DocumentNotFound
from .timefmt import iso_time
from .tokens import Identity

__all__ = ["HttpError", "http_error", "identify", "routes"]

# What an HTTP client is told for each refusal: (status, error code). The HTTP API and the feed.
_REFUSED: Mapping[RefusalReason, tuple[int, str]] = MappingProxyType(
    {
        RefusalReason.BAD_DOCUMENT_ID: (400, "bad_request"),
        RefusalReason.UNAUTHENTICATED: (401, "unauthorized"),
        RefusalReason.NO_ACCESS: (404, "not_found"),  # not visible == not there
        RefusalReason.DELETED: (404, "not_found"),
        RefusalReason.NOT_PRIVILEGED: (403, "forbidden"),
        RefusalReason.UNAVAILABLE: (503, "unavailable"),
        RefusalReason.PURPOSE_BOUND: (403, "purpose_bound"),
    }
)


class HttpError(Exception):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message

    def response(self) -> JSONResponse:
        return _error(self.status, self.error, self.message)


def http_error(refusal: Refusal) -> HttpError:
    """The HTTP answer to a refusal; a 404 says only "no such document", whatever the cause, so
    that it never tells that someone else's document exists."""
    status, error = _REFUSED[refusal.reason]
    return HttpError(status, error, "no such document" if status == 404 else refusal.message)


def _error(status: int, error: str, message: str) -> JSONResponse:
    return JSONResponse({"error": error, "message": message}, status_code=status)


def meta_json(meta: DocMeta) -> dict[str, Any]:
    return {
        "id": meta.key.name,
        "owner": meta.owner,
        "mode": meta.mode,
        "grants": dict(sorted(meta.grants.items())),
        "seq": meta.seq,
        "size_bytes": meta.size_bytes,
        "created_at": iso_time(meta.created_at),
        "updated_at": iso_time(meta.updated_at),
        "epoch": meta.epoch,
    }


def identify(request: Request, *, purpose_bound_ok: bool = True) -> tuple[Daemon, Identity]:
    """The daemon and the caller's identity from the request's token (header over query).
    ``purpose_bound_ok=False``: the endpoint shows documents' content or names, which a
    service bound to a purpose may read only through the consent gate.

    Raises:
        HttpError: 401 for a missing, malformed, forged or expired token; 403 for a
            purpose-bound service where it may not read.
    """
    daemon: Daemon = request.app.state.daemon
    try:
        identity = daemon.access.identify(bearer_token(request.headers, request.query_params))
        if not purpose_bound_ok:
            daemon.access.refuse_purpose_bound(identity)
    except Refusal as refusal:
        raise http_error(refusal) from refusal
    return daemon, identity


async def _authorize(
    request: Request, *, purpose_bound_ok: bool = False
) -> tuple[Daemon, DocId, Grant, DocMeta | None]:
    daemon: Daemon = request.app.state.daemon
    access = daemon.access
    try:
        doc = parse_doc_id(f"{request.path_params['owner']}/{request.path_params['name']}")
        identity = access.identify(bearer_token(request.headers, request.query_params))
        grant, meta = await access.authorize_stored(
            identity, doc, purpose_bound_ok=purpose_bound_ok
        )
    except Refusal as refusal:
        raise http_error(refusal) from refusal
    return daemon, doc, grant, meta


def _handled(handler):  # type: ignore[no-untyped-def]
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except HttpError as exc:
            return exc.response()
        except BodyRefused as exc:
            return exc.response()
        except StoreUnavailable as exc:
            return _error(503, "unavailable", f"storage unavailable: {exc}")

    endpoint.__name__ = handler.__name__
    return endpoint


@_handled
async def get_doc(request: Request) -> Response:
    daemon, _, grant, meta = await _authorize(request)
    if meta is None:
        raise HttpError(404, "not_found", "no such document")
    from .service_reads import audit_meta_read  # services' reads are audited (docs/privacy.md)

    await audit_meta_read(daemon, grant.identity, meta)
    return JSONResponse(meta_json(meta))


@_handled
async def put_access(request: Request) -> Response:
    daemon, doc, grant, meta = await _authorize(request)
    if not grant.may_manage:
        raise HttpError(403, "forbidden", "only the owner or an admin may change access")
    body = await read_json(request, daemon.settings.max_json_body_bytes)
    try:
        mode, grants = validate_access(doc.owner, body)
    except ValueError as exc:
        raise HttpError(400, "bad_request", str(exc)) from exc
    if meta is None:
        await daemon.store.create(grant.key)
    granted_before = dict(meta.grants) if meta is not None and meta.mode == "shared" else {}
    # Stored as the enums' strings: the store knows nothing of them.
    meta = await daemon.store.set_access(
        grant.key, mode.value, {principal: role.value for principal, role in grants.items()}
    )
    daemon.access_changed(meta)
    daemon.push.shared(meta, granted_before, by=grant.identity.sub)  # Web Push to the new ones
    return JSONResponse(meta_json(meta))


@_handled
async def get_state(request: Request) -> Response:
    daemon, _, grant, meta = await _authorize(request, purpose_bound_ok=True)
    if meta is None:
        raise HttpError(404, "not_found", "no such document")
    room = daemon.rooms.get_loaded(grant.key)
    update: bytes | None = None
    if room is not None:
        try:
            await room.readable()  # never serve a batch that is not committed yet
            update = room.full_update()
        except RoomClosed:
            update = None  # closed meanwhile: read the store instead
    if update is None:
        loaded = await daemon.store.load(grant.key)
        if loaded is None:
            raise HttpError(404, "not_found", "no such document")
        # Off the event loop: O(document). Stored updates that fail are left out (quarantined
        # when the document is next loaded into a room).
        update = await asyncio.to_thread(_fold_stored, loaded)
    # Consent gate + audit (docs/privacy.md), after the read: the log is append-only, so the
    # writers it finds now include every writer of ``update``.
    from .service_reads import audit_state_read

    await audit_state_read(daemon, grant.identity, meta)
    if "application/json" not in request.headers.get("accept", ""):
        return Response(update, media_type="application/octet-stream")
    content = await asyncio.to_thread(json_view, update)
    if content is None:
        raise HttpError(
            406,
            "not_acceptable",
            "a JSON view needs a known schema in meta.schema (journal/1, canvas/1); "
            "ask for application/octet-stream",
        )
    return JSONResponse(content)


def _fold_stored(loaded: LoadedDoc) -> bytes:
    return replay(loaded.snapshot, loaded.numbered_tail()).doc.get_update()


def json_view(update: bytes) -> dict[str, Any] | None:
    """The document's content as JSON by its schema; ``None`` for an unknown schema.

    Runs in a worker thread (its own pycrdt document); ``update`` is a committed state, every
    part of which passed the strict decoder, whose depth bound keeps this recursion shallow.
    """
    doc = pycrdt.Doc()
    apply_update(doc, update)
    schema = doc.get("meta", type=pycrdt.Map).get("schema")
    if schema == "journal/1":
        return Journal(doc).to_json()
    if schema == "canvas/1":
        return Canvas(doc).to_json()
    return None


@_handled
async def post_update(request: Request) -> Response:
    daemon, _, grant, _ = await _authorize(request, purpose_bound_ok=True)
    if grant.readonly:
        raise HttpError(403, "forbidden", "viewers cannot write")
    body = await read_body(request, daemon.settings.max_message_bytes)
    try:
        shape = validate_update(body)
    except ProtocolError as exc:
        raise HttpError(400, "bad_request", str(exc)) from exc
    try:
        room = await daemon.rooms.acquire(grant.key, create=grant.may_create)
    except (DocumentNotFound, DocumentDeleted) as exc:
        raise HttpError(404, "not_found", "no such document") from exc
    origin = Origin.http(grant.identity.sub, privileged=grant.identity.privileged)
    try:
        room.check_lineage(shape)
        done = await room.ingest(origin, body, ack=True)
        assert done is not None
        seq = await done
    except ProtocolError as exc:  # the document cannot take it (UpdateRejected): not stored
        raise HttpError(400, "bad_request", str(exc)) from exc
    except RoomClosed as exc:
        if exc.code == CloseCode.NOT_FOUND:
            raise HttpError(404, "not_found", "no such document") from exc
        raise HttpError(503, "unavailable", "document closed, retry") from exc
    finally:
        daemon.rooms.release(room)
    return JSONResponse({"seq": seq})


@_handled
async def delete_doc(request: Request) -> Response:
    daemon, _, grant, meta = await _authorize(request)
    if not grant.may_manage:
        raise HttpError(403, "forbidden", "only the owner or an admin may delete")
    if meta is None:
        raise HttpError(404, "not_found", "no such document")
    await daemon.rooms.delete(grant.key)
    return Response(status_code=204)


def routes() -> list[Route]:
    doc = "/v1/docs/{owner}/{name}"
    return [
        Route(doc, get_doc, methods=["GET"]),
        Route(doc, delete_doc, methods=["DELETE"]),
        Route(doc + "/access", put_access, methods=["PUT"]),
        Route(doc + "/state", get_state, methods=["GET"]),
        Route(doc + "/updates", post_update, methods=["POST"]),
    ]
