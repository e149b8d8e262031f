"""The change feed for services (DESIGN.md §1.7): HTTP long-poll and WebSocket push.

``GET /v1/feed?after=CURSOR&prefix=OWNER/…&limit=N&wait=SECONDS&format=updates|changes``
answers ``{"events": [...], "next": CURSOR}`` (msgpack; JSON with base64 updates when the client
accepts ``application/json``). ``ws://…/v1/feed?after=CURSOR`` pushes the same pages as they are
committed. Services and admins only; a tenant's documents only.

A service token with a ``purpose`` reads through its writers' consent (``syncd/feed_consent.py``:
``withheld`` events, placeholders, the consented projection), and every page with events served
to a service or admin is recorded in the audit trail before it is sent (docs/privacy.md).

Cursors are opaque strings; inside they are feed positions (see ``storage/feed.py`` for why a
position, once visible, is never followed by a smaller one). ``next`` is always present: pass it
back as ``after``, also when ``events`` is empty.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
from typing import Any

import msgpack
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from crdt.protocol import ProtocolError
from crdt.replay import check_stored
from crdt.updates import validate_update
from storage import DocKey, FeedEvent, FeedPage, StoreUnavailable

from .access import Refusal
from .bearer import bearer_token
from .daemon import Daemon
from .feed_consent import bound_purpose, consent_gate, withheld_json
from .http_api import http_error
from .peer import CloseCode
from .session import CLOSE_CODES
from .timefmt import iso_time
from .tokens import Identity

__all__ = ["decode_cursor", "encode_cursor", "feed_http", "feed_socket"]

log = logging.getLogger("syncd.feed")

MAX_LIMIT = 1000
MAX_WAIT = 60.0
# Commits on other nodes do not reach our CommitSignal: look again at least this often.
POLL_INTERVAL = 1.0
# Positions are 64-bit signed integers in the database: a larger cursor is malformed (400), not
# a query that fails in the driver.
MAX_POSITION = 2**63 - 1
_CURSOR = re.compile(r"c[0-9a-f]{1,16}")
_PREFIX = re.compile(r"[A-Za-z0-9._@+-]{1,64}(/[A-Za-z0-9._~-]{0,128})?")


def encode_cursor(pos: int) -> str:
    return f"c{pos:x}"


def decode_cursor(cursor: str | None) -> int:
    """``None`` (no ``after``) means the oldest retained position.

    Only what :func:`encode_cursor` makes is a cursor: ``c`` and 1 to 16 lowercase hex digits, at
    most ``MAX_POSITION``. ``int(…, 16)`` alone would also take a sign, ``0x``, underscores and
    spaces, and a position the database cannot compare with.
    """
    if not cursor:
        return 0
    if _CURSOR.fullmatch(cursor) is None or int(cursor[1:], 16) > MAX_POSITION:
        raise ValueError(f"invalid cursor {cursor[:20]!r}")
    return int(cursor[1:], 16)


def check_prefix(prefix: str) -> str:
    """A document-id prefix: an owner or its beginning, optionally ``/`` and the beginning of
    a name (DESIGN.md §1.3), so at most 193 characters. Anything else can never match: it is
    refused (400) rather than answered with an empty feed forever."""
    if _PREFIX.fullmatch(prefix) is None:
        raise ValueError(
            f"invalid prefix {prefix[:40]!r}: expected the beginning of an OWNER/NAME id"
        )
    return prefix


def event_json(event: FeedEvent, *, binary: bool) -> dict[str, Any]:
    data: Any = event.data if binary else base64.b64encode(event.data).decode()
    out: dict[str, Any] = {
        "type": event.type,
        "cursor": encode_cursor(event.pos),
        "doc": event.doc,
        "seq": event.seq,
        "at": iso_time(event.at),
    }
    if event.type == "update":
        out["principal"] = event.principal
        out["update"] = data
    else:
        out["state"] = data
    return out


class FeedQuery:
    """The parameters of a feed read, validated."""

    def __init__(self, params: Any) -> None:
        try:
            self.after = decode_cursor(params.get("after"))
            self.limit = int(params.get("limit", 100))
            self.wait = float(params.get("wait", 0))
        except ValueError as exc:
            raise ValueError(str(exc) if "cursor" in str(exc) else "bad limit or wait") from exc
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
        if not 0 <= self.wait <= MAX_WAIT:
            raise ValueError(f"wait must be between 0 and {MAX_WAIT} seconds")
        self.prefix = params.get("prefix") or None
        if self.prefix is not None:
            check_prefix(self.prefix)
        self.format = params.get("format", "updates")
        if self.format not in ("updates", "changes"):
            raise ValueError("format must be updates or changes")


async def read_page(daemon: Daemon, tenant: str, q: FeedQuery, after: int) -> FeedPage:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + q.wait
    while True:
        mark = daemon.commits.mark()
        page = await daemon.store.read_feed(tenant, after, prefix=q.prefix, limit=q.limit)
        left = deadline - loop.time()
        if page.events or left <= 0:
            return page
        await daemon.commits.wait(mark, min(left, POLL_INTERVAL))


async def render_page(
    daemon: Daemon, identity: Identity, page: FeedPage, q: FeedQuery, *, binary: bool
) -> dict[str, Any]:
    """The page as served to ``identity``: through its consent gate when it has a purpose
    (``syncd/feed_consent.py``), and recorded in the audit trail when it carries events.

    Raises:
        StoreUnavailable: the consents could not be read or the audit record not written; the
            page is then not served (nothing is served unaudited).
    """
    tenant = identity.tenant
    served = await _servable(daemon, tenant, page.events)
    docs = {e.doc for e in served}
    purpose = bound_purpose(identity)
    also = (
        daemon.changes.revealed(tenant, docs, purpose)
        if purpose is not None and q.format == "changes"
        else set()
    )
    gate = await consent_gate(daemon.consents, identity, served, also)
    events: list[dict[str, Any]] = []
    seen: set[str] = set()
    for e in served:
        if gate is not None and not gate.consents(e):
            events.append(
                withheld_json(e, binary=binary, with_placeholder=q.format == "updates")
            )
            continue
        events.append(event_json(e, binary=binary))
        if e.principal is not None:
            seen.add(e.principal)
    if q.format == "changes":
        await daemon.changes.annotate(tenant, served, events, gate)
    if served:
        await daemon.audit.record(tenant, identity.sub, purpose, "feed", docs, seen)
    return {"events": events, "next": encode_cursor(page.next_pos)}


# Above this many bytes in one page, the strict check runs in a worker thread.
_CHECK_INLINE_BYTES = 256 * 1024


async def _servable(daemon: Daemon, tenant: str, events: list[FeedEvent]) -> list[FeedEvent]:
    """The events whose data passes the strict decoder. One that does not was stored before the
    decoder existed and is not yet quarantined; served, it could crash a subscriber's own yrs:
    it is left out (a gap in that document's seqs) and quarantined."""
    if sum(len(e.data) for e in events) > _CHECK_INLINE_BYTES:
        bad = await asyncio.to_thread(_failing, events)
    else:
        bad = _failing(events)
    if not bad:
        return events
    by_doc: dict[str, dict[int, str]] = {}
    for event, reason in bad.items():
        log.error("feed: doc %s seq %d fails the strict decoder, withheld: %s",
                  event.doc, event.seq, reason)
        by_doc.setdefault(event.doc, {})[0 if event.type == "reset" else event.seq] = reason
    for doc, seqs in by_doc.items():
        with contextlib.suppress(StoreUnavailable):
            await daemon.store.quarantine(DocKey(tenant, doc), seqs)
    daemon.metrics.quarantined_updates.inc(len(bad))
    return [e for e in events if e not in bad]


def _failing(events: list[FeedEvent]) -> dict[FeedEvent, str]:
    bad: dict[FeedEvent, str] = {}
    for event in events:
        try:
            # An update as the strict decoder would take it from a client; a reset (a snapshot
            # yrs wrote itself) only for what would crash a subscriber's yrs (crdt/replay.py).
            if event.type == "reset":
                check_stored(event.data)
            else:
                validate_update(event.data)
        except ProtocolError as exc:
            bad[event] = str(exc)
    return bad


async def feed_http(request: Request) -> Response:
    daemon: Daemon = request.app.state.daemon
    try:
        identity = daemon.access.feed_access(bearer_token(request.headers, request.query_params))
    except Refusal as refusal:
        return http_error(refusal).response()
    try:
        q = FeedQuery(request.query_params)
    except ValueError as exc:
        return JSONResponse({"error": "bad_request", "message": str(exc)}, status_code=400)
    try:
        page = await read_page(daemon, identity.tenant, q, q.after)
    except StoreUnavailable as exc:
        return JSONResponse(
            {"error": "unavailable", "message": f"storage unavailable: {exc}"}, status_code=503
        )
    wants_json = "application/json" in request.headers.get("accept", "")
    try:
        body = await render_page(daemon, identity, page, q, binary=not wants_json)
    except StoreUnavailable as exc:
        return JSONResponse(
            {"error": "unavailable", "message": f"storage unavailable: {exc}"}, status_code=503
        )
    if wants_json:
        return JSONResponse(body)
    return Response(msgpack.packb(body, use_bin_type=True), media_type="application/msgpack")


async def feed_socket(ws: WebSocket) -> None:
    """Push pages as they are committed: one frame per page (msgpack; ``encoding=json`` for
    JSON text frames). A page is read only after the previous one was written, so a slow
    subscriber slows its own reads instead of queueing pages in memory."""
    daemon: Daemon = ws.app.state.daemon
    await ws.accept()
    try:
        identity = daemon.access.feed_access(bearer_token(ws.headers, ws.query_params))
        q = FeedQuery(ws.query_params)
    except Refusal as refusal:
        await _close(ws, CLOSE_CODES[refusal.reason], refusal.message)
        return
    except ValueError as exc:
        await _close(ws, CloseCode.MALFORMED, str(exc))
        return
    as_json = ws.query_params.get("encoding") == "json"
    gone = asyncio.Event()

    async def watch_disconnect() -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while (await ws.receive())["type"] != "websocket.disconnect":
                pass
        gone.set()

    watcher = asyncio.create_task(watch_disconnect())
    after = q.after
    try:
        while not gone.is_set():
            mark = daemon.commits.mark()
            try:
                page = await daemon.store.read_feed(
                    identity.tenant, after, prefix=q.prefix, limit=q.limit
                )
                body = (
                    await render_page(daemon, identity, page, q, binary=not as_json)
                    if page.events
                    else None
                )
            except StoreUnavailable as exc:
                await _close(ws, CloseCode.TRY_AGAIN_LATER, f"storage unavailable: {exc}")
                return
            if body is not None:
                if as_json:
                    await ws.send_text(json.dumps(body))
                else:
                    await ws.send_bytes(msgpack.packb(body, use_bin_type=True))
            after = page.next_pos
            if len(page.events) < q.limit:
                await daemon.commits.wait(mark, POLL_INTERVAL)
    except (WebSocketDisconnect, RuntimeError, OSError) as exc:
        log.debug("feed subscriber left: %r", exc)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await ws.send_text(json.dumps({"error": int(code), "message": reason}))
        await ws.close(code, reason[:120])
