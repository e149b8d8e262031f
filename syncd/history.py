"""History operations of the daemon (DESIGN.md §1.10): restore a version, roll back a principal,
read the activity trail, and the trash's restore and purge.

Restores and rollbacks are forward edits committed through the document's room like any other
update (origin ``restore``, attributed to the caller): they reach live clients, other nodes and
the feed, and merge with edits made while they were computed. The edit itself is computed off
the event loop by pure functions (``crdt/restore.py``, ``crdt/rollback.py``) from states and log
rows read from the store (``storage/history.py``).

Edit time: a stored update's ``at`` is the time the server received (committed) it. A Yjs update
carries no time of its own, and the times inside document content (``created_at`` fields) are
written by clients, so they could place an edit outside any window; a rollback window therefore
selects updates by when the server took them: an offline edit falls in the window of its upload.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from crdt.changes import ChangeDecoder
from crdt.replay import replay
from crdt.restore import restore_edit, root_kinds
from crdt.rollback import rollback_edit
from crdt.updates import validate_update
from crdt.yrs_guard import YrsFailure, guarded
from storage import DocKey, DocumentDeleted
from storage.history import Base, SqlHistory

from .origin import Origin, OriginKind
from .room import Room
from .rooms import DocumentNotFound, Rooms

__all__ = ["ActivityEntry", "HistoryOps", "Nothing"]


class Nothing(LookupError):
    """No such document or version (the HTTP API answers 404)."""


@dataclass(frozen=True, slots=True)
class ActivityEntry:
    seq: int
    at: float
    principal: str
    origin: str
    changes: list[dict[str, Any]] | None  # None: the update could not be decoded


class HistoryOps:
    def __init__(self, rooms: Rooms, history: SqlHistory) -> None:
        self.rooms = rooms
        self.history = history

    async def restore_version(self, key: DocKey, vid: int, principal: str) -> int:
        """Make the document's content equal to version ``vid``'s; returns the seq of the
        forward edit (the current seq when there was nothing to change).

        Raises:
            Nothing: no such document or version. HistoryGone: its history is incomplete.
        """
        target = await self.history.version_state(key, vid)
        if target is None:
            raise Nothing(f"no version {vid}")

        def compute(current: bytes) -> bytes | None:
            return restore_edit(current, target)

        return await self._commit_edit(key, principal, compute)

    async def rollback(
        self, key: DocKey, principal: str, since: float, until: float, by: str
    ) -> tuple[int, int]:
        """Undo what ``principal`` wrote with ``since <= at < until``; returns (the seq of the
        forward edit or the current one, how many stored updates were undone).

        Raises:
            Nothing: no such document. HistoryGone: the log before the window was pruned.
        """
        entries = await self.history.entries(key, since, until)
        if entries is None:
            raise Nothing(str(key))
        undone = {seq for seq, who, _ in entries if who == principal}
        if not undone:
            return await self._current_seq(key), 0
        found = await self.history.history_from(key, min(undone) - 1)
        if found is None:
            raise Nothing(str(key))
        base, _ = found

        def compute(current: bytes) -> bytes | None:
            log = [(e.data, e.seq in undone) for e in base.log if not e.quarantined]
            return rollback_edit(base.state, log, root_kinds(current))

        return await self._commit_edit(key, by, compute), len(undone)

    async def activity(
        self,
        key: DocKey,
        since: float | None,
        until: float | None,
        principal: str | None,
        limit: int,
    ) -> tuple[list[ActivityEntry], bool]:
        """The attributed trail with decoded changes, in seq order, at most ``limit`` entries
        (and whether more matched).

        Raises:
            Nothing: no such document. HistoryGone: the log before the window was pruned.
        """
        entries = await self.history.entries(key, since, until)
        if entries is None:
            raise Nothing(str(key))
        wanted = [seq for seq, who, _ in entries if principal is None or who == principal]
        more = len(wanted) > limit
        wanted = wanted[:limit]
        if not wanted:
            return [], False
        found = await self.history.history_from(key, wanted[0] - 1)
        if found is None:
            raise Nothing(str(key))
        base, _ = found
        trail = await asyncio.to_thread(_decode, base, set(wanted), wanted[-1])
        return trail, more

    async def _current_seq(self, key: DocKey) -> int:
        meta = await self.history.store.meta(key)
        if meta is None or meta.deleted:
            raise Nothing(str(key))
        return meta.seq

    async def _commit_edit(self, key: DocKey, principal: str, compute: Any) -> int:
        """Compute an edit against the room's committed state and commit it through the room."""
        try:
            room = await self.rooms.acquire(key, create=False)
        except (DocumentNotFound, DocumentDeleted) as exc:
            raise Nothing(str(key)) from exc
        try:
            current = await _committed_state(room)
            edit = await asyncio.to_thread(compute, current)
            if edit is None:
                return room.seq
            validate_update(edit)  # ours, but every update entering a room passes it
            done = await room.ingest(Origin(OriginKind.RESTORE, principal), edit, ack=True)
            assert done is not None
            return await done
        finally:
            self.rooms.release(room)


async def _committed_state(room: Room) -> bytes:
    await room.readable()  # never compute against a batch that is not committed yet
    return room.full_update()


def _decode(base: Base, wanted: set[int], last: int) -> list[ActivityEntry]:
    """Replay the log after ``base`` with a change decoder, keeping the entries of ``wanted``."""
    first = min(wanted)
    before = replay(base.state, base.updates_upto(first - 1)).doc.get_update()
    decoder = ChangeDecoder(before)
    out: list[ActivityEntry] = []
    for entry in base.log:
        if entry.seq < first or entry.quarantined:
            continue
        if entry.seq > last:
            break
        try:
            changes = guarded(decoder.apply, entry.data, principal=entry.principal)
            decoded: list[dict[str, Any]] | None = [c.to_json() for c in changes]
        except YrsFailure:
            decoded = None
            decoder = ChangeDecoder(
                replay(base.state, base.updates_upto(entry.seq)).doc.get_update()
            )
        if entry.seq in wanted:
            out.append(ActivityEntry(entry.seq, entry.at, entry.principal, entry.origin, decoded))
    return out
