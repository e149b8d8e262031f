"""A principal's data export as a streamed zip (DESIGN.md §1.11; docs/privacy.md).

``GET /v1/principals/{sub}/export`` answers with a zip written while it is sent: one document
at a time is read, converted and compressed into the response, so a large account never sits
in memory (a document's whole log does, while its activity is decoded). Python's ``zipfile``
writes to a sink that cannot seek by putting each entry's sizes in a data descriptor after it;
the sink here only collects the bytes ``zipfile`` writes until the response takes them.

Contents (``manifest.json`` lists them):

- ``documents/<name>.json`` and ``documents/<name>.yjs``: every live document the principal
  owns, as ``GET /v1/docs/{id}/state`` serves it (the JSON view by its schema; a document of
  no known schema gets its roots as plain JSON) and as one Yjs update.
- documents in the trash are listed in the manifest (``trash``) without content: restoring one
  and exporting again includes it; purged ones hold nothing and are not listed.
- ``grants.json``: the grants on their documents and the grants they hold on others'.
- ``consents.json``: their consent per purpose.
- ``activity.json``: every update they wrote in live documents of others (document, seq, time,
  origin, and the decoded changes of the feed's ``format=changes``; ``null`` where the update
  cannot be decoded, or where the history before it is no longer kept).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import time
import zipfile
from collections.abc import AsyncIterator
from typing import Any

import pycrdt

from crdt.replay import replay
from crdt.restore import root_kinds
from crdt.yrs_guard import apply_update
from storage import DocKey
from storage.history import HistoryGone
from storage.principal_data import PrincipalData

from .daemon import Daemon
from .history import Nothing
from .http_api import json_view
from .room import RoomClosed
from .timefmt import iso_time

__all__ = ["EXPORT_FORMAT", "export_zip"]

log = logging.getLogger("syncd.export")

EXPORT_FORMAT = "syncd-export/1"


class _Sink(io.RawIOBase):
    """Where ``zipfile`` writes; not seekable, so it streams (data descriptors)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:  # type: ignore[override]
        chunk = bytes(data)
        self._chunks.append(chunk)
        return len(chunk)

    def take(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=1).encode()


async def export_zip(daemon: Daemon, tenant: str, sub: str) -> AsyncIterator[bytes]:
    """The export of ``sub`` in ``tenant``, as the chunks of a zip file."""
    data = PrincipalData(daemon.store)  # type: ignore[arg-type]
    sink = _Sink()
    archive = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED)
    manifest: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "principal": sub,
        "tenant": tenant,
        "exported_at": iso_time(time.time()),
        "documents": [],
        "trash": [],
        "files": [],
    }

    async def put(name: str, payload: bytes) -> bytes:
        await asyncio.to_thread(archive.writestr, name, payload)
        manifest["files"].append(name)
        return sink.take()

    for row in await data.owned(tenant, sub):
        if row.purged:
            continue
        if row.in_trash:
            assert row.deleted_at is not None
            manifest["trash"].append({"id": row.name, "deleted_at": iso_time(row.deleted_at)})
            continue
        key = DocKey(tenant, row.name)
        state = await _committed_state(daemon, key)
        if state is None:  # deleted meanwhile
            continue
        view = await asyncio.to_thread(_json_of, state)
        local = row.name.split("/", 1)[1]
        entry = {
            "id": row.name,
            "json": f"documents/{local}.json",
            "yjs": f"documents/{local}.yjs",
            "mode": row.mode,
            "seq": row.seq,
            "epoch": row.epoch,
            "created_at": iso_time(row.created_at),
            "updated_at": iso_time(row.updated_at),
        }
        yield await put(entry["yjs"], state)
        yield await put(entry["json"], _dumps(view))
        manifest["documents"].append(entry)

    on_own = await data.grants_on_owned(tenant, sub)
    held = await data.grants_held(tenant, sub)
    grants_json = {
        "on_their_documents": [{"document": d, "principal": p, "role": r} for d, p, r in on_own],
        "held": [{"document": d, "role": r} for d, r in held],
    }
    yield await put("grants.json", _dumps(grants_json))
    consents = await data.consents(tenant, sub)
    consents_json = {
        "consents": {p: {"granted": g, "updated_at": iso_time(at)} for p, g, at in consents}
    }
    yield await put("consents.json", _dumps(consents_json))

    documents, entries = 0, 0
    # force_zip64: the trail of a prolific writer may pass 4 GiB, and a streamed entry's size
    # is not known before it is written.
    with archive.open("activity.json", "w", force_zip64=True) as out:
        out.write(b'{"principal": ' + json.dumps(sub).encode() + b', "entries": [')
        for name in await data.written_in(tenant, sub):
            trail = await _trail(daemon, DocKey(tenant, name), sub)
            for item in trail:
                out.write((b",\n" if entries else b"\n") + json.dumps(item).encode())
                entries += 1
            documents += 1 if trail else 0
            yield sink.take()
        out.write(b"\n]}\n")
    manifest["files"].append("activity.json")
    manifest["activity"] = {"documents": documents, "entries": entries}
    manifest["files"].append("manifest.json")
    yield await put("manifest.json", _dumps(manifest))
    archive.close()
    yield sink.take()


async def _committed_state(daemon: Daemon, key: DocKey) -> bytes | None:
    """The document as ``GET …/state`` serves it: the room's committed state, else the store's."""
    room = daemon.rooms.get_loaded(key)
    if room is not None:
        try:
            await room.readable()
            return room.full_update()
        except RoomClosed:
            pass  # closed meanwhile: read the store
    loaded = await daemon.store.load(key)
    if loaded is None:
        return None
    return await asyncio.to_thread(
        lambda: replay(loaded.snapshot, loaded.numbered_tail()).doc.get_update()
    )


def _json_of(state: bytes) -> dict[str, Any]:
    view = json_view(state)
    if view is not None:
        return view
    # No known schema: every root as plain JSON, so that nothing of the document is left out.
    doc = pycrdt.Doc()
    apply_update(doc, state)
    roots: dict[str, Any] = {}
    for name, kind in sorted(root_kinds(state).items()):
        root = doc.get(name, type=kind)
        roots[name] = str(root) if kind is pycrdt.Text else root.to_py()
    return {"schema": None, "roots": roots}


async def _trail(daemon: Daemon, key: DocKey, sub: str) -> list[dict[str, Any]]:
    """What ``sub`` wrote in ``key``, with decoded changes where the kept history allows."""
    try:
        found, _ = await daemon.history_ops.activity(key, None, None, sub, sys.maxsize)
    except Nothing:
        return []  # deleted meanwhile
    except HistoryGone:
        # Rows before the kept history cannot be decoded (no base): listed without changes.
        rows = await daemon.history.entries(key, None, None) or []
        return [
            {"document": key.name, "seq": seq, "at": iso_time(at), "origin": None, "changes": None}
            for seq, who, at in rows
            if who == sub
        ]
    return [
        {
            "document": key.name,
            "seq": e.seq,
            "at": iso_time(e.at),
            "origin": e.origin,
            "changes": e.changes,
        }
        for e in found
    ]
