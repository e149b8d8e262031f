"""Versions and the attributed log, read for history (DESIGN.md §1.10); SQLite and Postgres.

A version is a pointer into a document's log: ``(doc, seq)``, made in one insert (no copy), so
creating one costs the same for a document of ten updates or a million. What it needs in order
to be rebuilt is protected from compaction and log retention by one invariant:

    every kept version at or below the snapshot's seq has its own ``state``.

Compaction (``SqlStore.compact``) folds the log into a new snapshot and may then prune rows at or
below it; just before, in the same transaction, it writes the state of every version it folds
past that has none (one replay gives them all: :func:`fold_with_versions`). A version above the
snapshot is rebuilt from the snapshot and the rows after it, which are never pruned. So a
version costs nothing until compaction passes it, and then one document state (measured in
``benchmarks/history.py``); deleting the version frees it.

Rebuilding a version, a rollback's replay and the activity trail all read a *base* (the
document at some seq: a version's state, the snapshot, or the empty document at seq 0) and the
complete log after it; :func:`base_at_or_before` picks the latest base the log continues from.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pycrdt import Doc
from sqlalchemy import func, select, text
from sqlalchemy import update as sa_update
from sqlalchemy.ext.asyncio import AsyncConnection

from crdt.replay import SNAPSHOT_SEQ, replay
from crdt.yrs_guard import apply_update

from .row_security import ALL_TENANTS
from .schema import quarantine, snapshots, updates, versions
from .sealing import Kind
from .store import DocKey, LoadedDoc

if TYPE_CHECKING:
    from .sealed_rows import RowSealing
    from .sql import SqlStore

__all__ = [
    "HistoryGone",
    "LogEntry",
    "SqlHistory",
    "Version",
    "fold_with_versions",
    "store_version_states",
    "versions_to_fold",
]

NAMED, AUTO = "named", "auto"


class HistoryGone(LookupError):
    """The history asked for is no longer complete (pruned by retention before versions kept
    it); nothing is guessed."""


@dataclass(frozen=True, slots=True)
class Version:
    id: int
    name: str
    kind: str  # "named" | "auto"
    seq: int
    created_at: float
    created_by: str


@dataclass(frozen=True, slots=True)
class LogEntry:
    seq: int
    principal: str
    origin: str
    at: float  # the server's receive (commit) time
    data: bytes
    quarantined: bool = False


@dataclass(frozen=True, slots=True)
class Base:
    """The document at ``seq`` (``state`` None: the empty document) and the log after it."""

    seq: int
    state: bytes | None
    log: list[LogEntry]

    def updates_upto(self, seq: int) -> list[tuple[int, bytes]]:
        return [(e.seq, e.data) for e in self.log if e.seq <= seq and not e.quarantined]


class SqlHistory:
    """History queries over an open :class:`~storage.sql.SqlStore` (its engine and rows)."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    # -- versions ------------------------------------------------------------------------------

    async def create_version(
        self, key: DocKey, name: str, kind: str, created_by: str, *, seq: int | None = None
    ) -> Version:
        """A version at the document's committed seq (or ``seq``, not beyond it).

        Raises:
            KeyError: the document does not exist or is deleted.
        """
        now = time.time()
        await self.store.sealing.ensure_key(self.store._begin, key.tenant)  # for its state
        async with self.store._begin(tenants=[key.tenant]) as conn:
            # Locked so that a compaction committing meanwhile cannot miss the new version.
            doc = await self.store._lock_live_doc(conn, key)
            if doc is None:
                raise KeyError(str(key))
            at = doc.seq if seq is None else min(seq, doc.seq)
            vid = (
                await conn.execute(
                    versions.insert()
                    .values(
                        doc_id=doc.id,
                        name=name,
                        kind=kind,
                        seq=at,
                        created_at=now,
                        created_by=created_by,
                    )
                    .returning(versions.c.id)
                )
            ).scalar_one()
            if at < doc.snapshot_seq:  # below the snapshot: it needs its state now
                await store_version_states(conn, self.store, doc, [(vid, at)], None)
        return Version(vid, name, kind, at, now, created_by)

    async def versions(self, key: DocKey) -> list[Version] | None:
        """The document's versions, newest first; ``None`` if it does not exist."""
        async with self.store._begin(tenants=[key.tenant], write=False) as conn:
            doc = await self.store._doc_row(conn, key)
            if doc is None or doc.deleted_at is not None:
                return None
            rows = await conn.execute(
                select(*_VERSION_COLUMNS)
                .where(versions.c.doc_id == doc.id)
                .order_by(versions.c.seq.desc(), versions.c.id.desc())
            )
            return [Version(*row) for row in rows]

    async def version(self, key: DocKey, vid: int) -> Version | None:
        async with self.store._begin(tenants=[key.tenant], write=False) as conn:
            return await self._version(conn, key, vid)

    async def _version(self, conn: AsyncConnection, key: DocKey, vid: int) -> Version | None:
        doc = await self.store._doc_row(conn, key)
        if doc is None or doc.deleted_at is not None:
            return None
        row = (
            await conn.execute(
                select(*_VERSION_COLUMNS).where(versions.c.doc_id == doc.id, versions.c.id == vid)
            )
        ).first()
        return Version(*row) if row is not None else None

    async def delete_version(self, key: DocKey, vid: int) -> bool:
        async with self.store._begin(tenants=[key.tenant]) as conn:
            doc = await self.store._lock_live_doc(conn, key)
            if doc is None:
                return False
            result = await conn.execute(
                versions.delete().where(versions.c.doc_id == doc.id, versions.c.id == vid)
            )
            return result.rowcount > 0

    async def version_state(self, key: DocKey, vid: int) -> bytes | None:
        """The document at the version, as one update (with its history: not garbage collected);
        ``None`` if there is no such version.

        Raises:
            HistoryGone: its history is incomplete (should not happen: see the module's
                invariant; a database written without it, e.g. by hand).
        """
        async with self.store._begin(tenants=[key.tenant], write=False, snapshot=True) as conn:
            doc = await self.store._doc_row(conn, key)
            if doc is None or doc.deleted_at is not None:
                return None
            row = (
                await conn.execute(
                    select(versions.c.seq, versions.c.state).where(
                        versions.c.doc_id == doc.id, versions.c.id == vid
                    )
                )
            ).first()
            if row is None:
                return None
            if row.state is not None:
                return await self.store.sealing.open_one(conn, key, Kind.VERSION, vid, row.state)
            base = await base_at_or_before(
                conn, doc.id, row.seq, row.seq, key=key, sealing=self.store.sealing
            )
        return await asyncio.to_thread(_fold, base.state, base.updates_upto(row.seq))

    # -- the log -------------------------------------------------------------------------------

    async def history_from(self, key: DocKey, seq: int) -> tuple[Base, int] | None:
        """The latest base at or before ``seq`` and the complete log after it up to the
        document's committed seq (returned too); ``None`` if the document does not exist.

        Raises:
            HistoryGone: no base at or before ``seq`` is followed by a complete log.
        """
        async with self.store._begin(tenants=[key.tenant], write=False, snapshot=True) as conn:
            doc = await self.store._doc_row(conn, key)
            if doc is None or doc.deleted_at is not None:
                return None
            base = await base_at_or_before(
                conn, doc.id, seq, doc.seq, key=key, sealing=self.store.sealing
            )
            return base, doc.seq

    async def entries(
        self, key: DocKey, since: float | None, until: float | None
    ) -> list[tuple[int, str, float]] | None:
        """``(seq, principal, at)`` of the stored updates with ``since <= at < until``, in seq
        order (quarantined ones left out); ``None`` if the document does not exist."""
        async with self.store._begin(tenants=[key.tenant], write=False) as conn:
            doc = await self.store._doc_row(conn, key)
            if doc is None or doc.deleted_at is not None:
                return None
            where = [updates.c.doc_id == doc.id]
            if since is not None:
                where.append(updates.c.at >= since)
            if until is not None:
                where.append(updates.c.at < until)
            bad = select(quarantine.c.seq).where(quarantine.c.doc_id == doc.id)
            rows = await conn.execute(
                select(updates.c.seq, updates.c.principal, updates.c.at)
                .where(*where, updates.c.seq.not_in(bad))
                .order_by(updates.c.seq)
            )
            return [(r.seq, r.principal, r.at) for r in rows]

    # -- automatic versions --------------------------------------------------------------------

    async def auto_versions(self, every_seconds: float, keep: int) -> list[DocKey]:
        """Version every live document that changed since its newest version and whose newest
        automatic version (or, without one, its creation) is ``every_seconds`` old; keep the
        newest ``keep`` automatic versions of each. Returns the documents versioned.

        One transaction; on Postgres under an advisory lock, so nodes sweeping at once do not
        version a document twice."""
        now = time.time()
        made: list[DocKey] = []
        # A sweep over every tenant: maintenance, the scope storage/row_security.py reserves.
        async with self.store._begin(tenants=ALL_TENANTS) as conn:
            if self.store.dialect == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(7370637)"))
            rows = (
                await conn.execute(
                    text(
                        "SELECT d.id, d.tenant, d.name, d.seq, d.snapshot_seq,"
                        " (SELECT MAX(v.seq) FROM syncd_versions v WHERE v.doc_id = d.id) AS vseq,"
                        " (SELECT MAX(v.created_at) FROM syncd_versions v"
                        "  WHERE v.doc_id = d.id AND v.kind = 'auto') AS auto_at,"
                        " d.created_at"
                        " FROM syncd_documents d WHERE d.deleted_at IS NULL AND d.seq > 0"
                    )
                )
            ).all()
            due = [
                r
                for r in rows
                if r.seq > (r.vseq or 0)
                and now - (r.auto_at if r.auto_at is not None else r.created_at) >= every_seconds
            ]
            for r in due:
                await conn.execute(
                    versions.insert().values(
                        doc_id=r.id,
                        name="automatic",
                        kind=AUTO,
                        seq=r.seq,
                        created_at=now,
                        created_by="syncd",
                    )
                )
                await conn.execute(
                    text(
                        "DELETE FROM syncd_versions WHERE doc_id = :doc AND kind = 'auto'"
                        " AND id NOT IN (SELECT id FROM (SELECT id FROM syncd_versions"
                        " WHERE doc_id = :doc AND kind = 'auto'"
                        " ORDER BY seq DESC, id DESC LIMIT :keep) AS kept)"
                    ),
                    {"doc": r.id, "keep": keep},
                )
                made.append(DocKey(r.tenant, r.name))
        return made


_VERSION_COLUMNS = (
    versions.c.id,
    versions.c.name,
    versions.c.kind,
    versions.c.seq,
    versions.c.created_at,
    versions.c.created_by,
)


async def base_at_or_before(
    conn: AsyncConnection,
    doc_id: int,
    seq: int,
    upto: int,
    *,
    key: DocKey,
    sealing: RowSealing,
) -> Base:
    """The latest base at or before ``seq`` (a version's state, the snapshot, or the empty
    document) whose log after it is complete up to ``upto``; ``key`` is the document's, whose
    rows ``sealing`` opens.

    Raises:
        HistoryGone: there is none.
        SealedRowError: a row it needs does not open.
    """
    bad = set(
        (
            await conn.execute(select(quarantine.c.seq).where(quarantine.c.doc_id == doc_id))
        ).scalars()
    )
    # (seq, what it is for opening, its number, stored bytes)
    candidates: list[tuple[int, Kind, int, bytes | None]] = [(0, Kind.SNAPSHOT, 0, None)]
    if 0 not in bad:
        snap = (
            await conn.execute(
                select(snapshots.c.upto_seq, snapshots.c.state).where(
                    snapshots.c.doc_id == doc_id, snapshots.c.upto_seq <= seq
                )
            )
        ).first()
        if snap is not None:
            candidates.append((snap.upto_seq, Kind.SNAPSHOT, snap.upto_seq, snap.state))
    kept = (
        await conn.execute(
            select(versions.c.id, versions.c.seq, versions.c.state)
            .where(
                versions.c.doc_id == doc_id,
                versions.c.seq <= seq,
                versions.c.state.is_not(None),
            )
            .order_by(versions.c.seq.desc())
            .limit(1)
        )
    ).first()
    if kept is not None:
        candidates.append((kept.seq, Kind.VERSION, kept.id, kept.state))
    # The log is kept from its oldest row on: the latest base not below that row's predecessor.
    oldest = (
        await conn.execute(select(func.min(updates.c.seq)).where(updates.c.doc_id == doc_id))
    ).scalar_one()
    first_kept = oldest if oldest is not None else upto + 1
    usable = [c for c in candidates if c[0] >= first_kept - 1 or c[0] >= upto]
    if not usable:
        raise HistoryGone(f"the log before seq {first_kept} was pruned")
    base_seq, kind, number, stored = max(usable, key=lambda c: c[0])
    rows = (
        await conn.execute(
            select(
                updates.c.seq, updates.c.principal, updates.c.origin, updates.c.at, updates.c.data
            )
            .where(updates.c.doc_id == doc_id, updates.c.seq > base_seq, updates.c.seq <= upto)
            .order_by(updates.c.seq)
        )
    ).all()
    if len(rows) != upto - base_seq:
        raise HistoryGone(f"the log between seq {base_seq} and {upto} is incomplete")
    opened = await sealing.open(
        conn,
        key,
        ([(kind, number, stored)] if stored is not None else [])
        + [(Kind.UPDATE, r.seq, r.data) for r in rows],
    )
    state = opened.pop(0) if stored is not None else None
    log = [
        LogEntry(r.seq, r.principal, r.origin, r.at, data, r.seq in bad)
        for r, data in zip(rows, opened, strict=True)
    ]
    return Base(base_seq, state, log)


def _fold(state: bytes | None, tail: list[tuple[int, bytes]]) -> bytes:
    return replay(state, tail, skip_gc=True).doc.get_update()


# -- compaction's part (called from SqlStore.compact) ------------------------------------------


async def versions_to_fold(store: SqlStore, key: DocKey, upto: int) -> list[tuple[int, int]]:
    """``(id, seq)`` of the versions at or below ``upto`` that have no state yet."""
    async with store._begin(tenants=[key.tenant], write=False) as conn:
        doc = await store._doc_row(conn, key)
        if doc is None:
            return []
        return await _stateless(conn, doc.id, upto)


async def _stateless(conn: AsyncConnection, doc_id: int, upto: int) -> list[tuple[int, int]]:
    rows = await conn.execute(
        select(versions.c.id, versions.c.seq).where(
            versions.c.doc_id == doc_id, versions.c.seq <= upto, versions.c.state.is_(None)
        )
    )
    return [(r.id, r.seq) for r in rows]


def fold_with_versions(
    loaded: LoadedDoc, at: Iterable[int]
) -> tuple[bytes, dict[int, str], dict[int, bytes]]:
    """Compaction's fold: the whole document (with history), what was left out, and the
    document at each seq of ``at`` (at or above the snapshot)."""
    tail = loaded.numbered_tail()
    result = replay(loaded.snapshot, tail, skip_gc=True, snapshot_checked=loaded.snapshot_checked)
    skipped = dict(result.skipped)
    wanted = sorted(set(at))
    states: dict[int, bytes] = {}
    if wanted:
        # A second pass over what the first one took, capturing the state at each version.
        doc = Doc(skip_gc=True)
        if loaded.snapshot and SNAPSHOT_SEQ not in skipped:
            apply_update(doc, loaded.snapshot)
        pending = iter(wanted)
        next_seq = next(pending, None)
        for seq, update in tail:
            while next_seq is not None and next_seq < seq:
                states[next_seq] = doc.get_update()
                next_seq = next(pending, None)
            if seq not in skipped:
                apply_update(doc, update)
        while next_seq is not None:
            states[next_seq] = doc.get_update()
            next_seq = next(pending, None)
    return result.doc.get_update(), skipped, states


async def store_version_states(
    conn: AsyncConnection,
    store: SqlStore,
    doc,  # type: ignore[no-untyped-def]  # the locked document row
    pending: list[tuple[int, int]],
    states: dict[int, bytes] | None,
) -> None:
    """Write the state of the versions of ``pending`` (``(id, seq)``), from ``states`` where
    computed, else rebuilt here (a version made while the compaction was folding)."""
    key = DocKey(doc.tenant, doc.name)
    for vid, seq in pending:
        state = states.get(seq) if states is not None else None
        if state is None:
            base = await base_at_or_before(conn, doc.id, seq, seq, key=key, sealing=store.sealing)
            state = await asyncio.to_thread(_fold, base.state, base.updates_upto(seq))
        # Sealed under the version's id (the caller made sure the tenant has a data key).
        stored = await store.sealing.seal(conn, key, Kind.VERSION, vid, state)
        await conn.execute(
            sa_update(versions)
            .where(versions.c.id == vid, versions.c.state.is_(None))
            .values(state=stored)
        )
