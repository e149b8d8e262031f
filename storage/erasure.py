"""Erasure of a principal in the store (DESIGN.md §1.11; docs/privacy.md "Export and erasure").

The daemon's part (``syncd/erasure.py``) purges the principal's own documents through the trash
(``storage/trash.py``) and then calls this module for the rest:

- :meth:`SqlErasure.rewrite`: a document of someone else that the principal wrote in, or whose
  content holds their identity, becomes a **new lineage**: its current content copied without
  the identity (``crdt/scrub.py``) is stored as its only content, a snapshot at ``seq + 1``
  with no log (the attributed log, which names the principal on every row they wrote, is
  gone), versions' states rewritten the same way (a document in the trash loses its versions:
  their states can only be read from a live document), and a new epoch, so that replicas of
  the old lineage are refused by the epoch guard instead of merged back.
- the feed sees the rewrite as a ``reset``: the snapshot gets a fresh feed position and the
  document's ``pruned_pos`` moves to it, so a subscriber whose cursor is older receives the
  rewritten state instead of the old rows, which are gone.
- :meth:`SqlErasure.forget_records` (``storage/erased_records.py``): grants held, consents,
  push subscriptions, and the name in audit records and version attribution.
- :meth:`SqlErasure.drop_tombstones`: the bare tombstone rows of the purged documents carry the
  name ``bob/…``; they are deleted, and :mod:`storage.erased_principals` (a salted hash) refuses
  the ids instead.
- :meth:`SqlErasure.wipe_files`: on SQLite, the bytes of deleted rows stay in free pages and in
  the WAL; ``VACUUM`` rebuilds the file (also pages freed long before the erasure, which no
  ``secure_delete`` then could have zeroed) and ``wal_checkpoint(TRUNCATE)`` empties the WAL.

:func:`write_rewritten_lineage` is the one function here that writes document bytes; it seals
them as compaction does (``storage/sealed_rows.py``) when encryption at rest is on.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select
from sqlalchemy import update as sa_update
from sqlalchemy.ext.asyncio import AsyncConnection

from crdt.replay import replay
from crdt.scrub import ERASED, Scrubber, scrub
from crdt.updates import clock_ends

from .erased_principals import record_erased
from .erased_records import forget_records
from .history import SqlHistory
from .lineage_fence import extend_fence
from .principal_data import scoped
from .schema import (
    documents,
    feed_position,
    new_epoch,
    quarantine,
    served_states,
    snapshots,
    updates,
    versions,
)
from .sealed_rows import RowSealing
from .sealing import Kind
from .store import DocKey, LoadedDoc, StoreUnavailable

if TYPE_CHECKING:
    from .sql import SqlStore

__all__ = ["Rewritten", "SqlErasure", "write_rewritten_lineage"]

log = logging.getLogger("syncd.erasure")

# A rewrite is computed from one read and committed only if nothing was written in between
# (optimistic): a busy document is read again, a few times.
_ATTEMPTS = 8


@dataclass(frozen=True, slots=True)
class Rewritten:
    key: DocKey
    seq: int
    epoch: str
    live: bool  # False: the document is in the trash


@dataclass(frozen=True, slots=True)
class _Plan:
    loaded: LoadedDoc
    live: bool
    state: bytes
    versions: dict[int, tuple[bytes, str, str]] | None  # id -> (state, name, created_by)
    fence: dict[int, int]  # the old lineage's clients and the clocks they reach


class _Moved(Exception):
    """The document changed between the read and the write: read it again."""


class SqlErasure:
    def __init__(self, store: SqlStore, history: SqlHistory) -> None:
        self.store = store
        self.history = history

    async def record(self, tenant: str, sub: str) -> None:
        """From now on nothing can be created under ``sub``'s name in ``tenant``."""
        async with scoped(self.store, tenant, write=True) as conn:
            await record_erased(conn, tenant, sub)

    # -- other people's documents ------------------------------------------------------------

    async def rewrite(self, key: DocKey, scrubber: Scrubber, sub: str) -> Rewritten | None:
        """Rewrite ``key`` as a new lineage without the identity, if it holds any (authored
        rows or versions of ``sub``, or the identity's bytes in its stored content); ``None``
        when there was nothing to rewrite (or the document is gone).

        Raises:
            StoreUnavailable: the database failed, or the document kept changing.
        """
        for _ in range(_ATTEMPTS):
            try:
                plan = await self._plan(key, scrubber, sub)
                if plan is None:
                    return None
                return await self._commit(key, plan)
            except _Moved:
                continue
        raise StoreUnavailable(f"document {key} kept changing while it was being rewritten")

    async def _plan(self, key: DocKey, scrubber: Scrubber, sub: str) -> _Plan | None:
        loaded = await self.store.load(key, include_deleted=True)
        if loaded is None:
            return None
        meta = await self.store.meta(key)
        if meta is None or meta.purged:
            return None
        live = not meta.deleted
        mentioned = scrubber.mentions(loaded.snapshot or b"") or any(
            scrubber.mentions(u) for u in loaded.tail
        )
        async with scoped(self.store, key.tenant) as conn:
            doc_id = (
                await conn.execute(
                    select(documents.c.id).where(
                        documents.c.tenant == key.tenant, documents.c.name == key.name
                    )
                )
            ).scalar_one()
            authored = (
                await conn.execute(
                    select(func.count())
                    .select_from(updates)
                    .where(updates.c.doc_id == doc_id, updates.c.principal == sub)
                )
            ).scalar_one() + (
                await conn.execute(
                    select(func.count())
                    .select_from(versions)
                    .where(versions.c.doc_id == doc_id, versions.c.created_by == sub)
                )
            ).scalar_one()
            with_state = list(
                (
                    await conn.execute(
                        select(versions.c.id).where(
                            versions.c.doc_id == doc_id, versions.c.state.is_not(None)
                        )
                    )
                ).scalars()
            )
        found = await self.history.versions(key) if live else None
        named = any(scrubber.mentions(v.name.encode()) for v in found or [])
        # A version without a state of its own is rebuilt from the snapshot and log just
        # searched; one with a state may hold content that an earlier rewrite (another
        # principal's erasure) took out of the snapshot.
        if not (mentioned or authored or named) and not await self._mentioned_in_versions(
            key, with_state if live else [], scrubber
        ):
            return None
        state = await asyncio.to_thread(_scrubbed_current, loaded, scrubber)
        old = [loaded.snapshot, *loaded.tail] if loaded.snapshot else loaded.tail
        fence = await asyncio.to_thread(clock_ends, old)
        rewritten: dict[int, tuple[bytes, str, str]] | None = None
        if found is not None:
            rewritten = {}
            for version in found:
                old = await self.history.version_state(key, version.id)
                if old is None:
                    raise _Moved()  # deleted meanwhile
                new = await asyncio.to_thread(scrub, old, scrubber)
                author = ERASED if version.created_by in scrubber.identities else version.created_by
                rewritten[version.id] = (new, scrubber.string(version.name), author)
        return _Plan(loaded, live, state, rewritten, fence)

    async def _mentioned_in_versions(self, key: DocKey, ids: list[int], scrubber: Scrubber) -> bool:
        for vid in ids:
            state = await self.history.version_state(key, vid)
            if state is not None and scrubber.mentions(state):
                return True
        return False

    async def _commit(self, key: DocKey, plan: _Plan) -> Rewritten | None:
        # Encryption at rest: the tenant's data key exists before the transaction that seals.
        await self.store.sealing.ensure_key(self.store._begin, key.tenant)
        now = time.time()
        epoch = new_epoch()
        async with scoped(self.store, key.tenant, write=True) as conn:
            # The feed position first, as appends take it (one lock order: no deadlock); the
            # reset the feed serves for this document sits at this position.
            pos = (
                await conn.execute(
                    sa_update(feed_position)
                    .where(feed_position.c.id == 1)
                    .values(pos=feed_position.c.pos + 1)
                    .returning(feed_position.c.pos)
                )
            ).scalar_one()
            doc = (
                await conn.execute(
                    select(documents)
                    .where(documents.c.tenant == key.tenant, documents.c.name == key.name)
                    .with_for_update()
                )
            ).first()
            if doc is None or doc.purged_at is not None:
                return None
            if (
                doc.seq != plan.loaded.seq
                or doc.epoch != plan.loaded.epoch
                or (doc.deleted_at is None) != plan.live
            ):
                raise _Moved()
            if plan.versions is not None:
                ids = set(
                    (
                        await conn.execute(select(versions.c.id).where(versions.c.doc_id == doc.id))
                    ).scalars()
                )
                if ids != set(plan.versions):
                    raise _Moved()
            seq = doc.seq + 1
            await write_rewritten_lineage(
                conn,
                self.store.sealing,
                doc.id,
                key,
                seq=seq,
                pos=pos,
                state=plan.state,
                at=now,
                version_states=plan.versions,
            )
            # A stock client's replica of the old lineage must not merge it back on reconnect.
            await extend_fence(conn, doc.id, plan.fence)
            await conn.execute(
                sa_update(documents)
                .where(documents.c.id == doc.id)
                .values(
                    seq=seq,
                    snapshot_seq=seq,
                    size_bytes=len(plan.state),
                    epoch=epoch,
                    pruned_pos=pos,
                    updated_at=now,
                )
            )
        return Rewritten(key, seq, epoch, plan.live)

    # -- records -----------------------------------------------------------------------------

    async def forget_records(self, tenant: str, sub: str, scrubber: Scrubber) -> dict[str, int]:
        """Remove ``sub``'s grants, consents and push subscriptions; take their name out of
        audit records and version attribution (``storage/erased_records.py``)."""
        async with scoped(self.store, tenant, write=True) as conn:
            return await forget_records(conn, tenant, sub, scrubber)

    async def drop_tombstones(self, tenant: str, sub: str, names: list[str]) -> int:
        """Delete the rows of ``sub``'s purged documents (bare tombstones: no content left)."""
        if not names:
            return 0
        async with scoped(self.store, tenant, write=True) as conn:
            result = await conn.execute(
                delete(documents).where(
                    documents.c.tenant == tenant,
                    documents.c.name.in_(names),
                    documents.c.purged_at.is_not(None),
                )
            )
        for name in names:
            # Row ids are cached for appends; a later document of that id would get a new row.
            self.store._ids.pop(DocKey(tenant, name), None)
        return result.rowcount

    # -- the files -----------------------------------------------------------------------------

    async def wipe_files(self) -> bool | None:
        """SQLite: rebuild the database file and empty the WAL, so that no deleted byte stays in
        the files; ``False`` if SQLite could not do it now (busy: an erasure run again does it).
        Postgres: nothing here, ``None`` (see docs/privacy.md: dead tuples)."""
        if self.store.dialect != "sqlite":
            return None
        path = self.store.url.split(":///", 1)[1] if ":///" in self.store.url else ""
        if not path or path == ":memory:":
            return None
        try:
            async with self.store.write_turn():  # the appender's thread waits meanwhile
                return await asyncio.to_thread(_vacuum_sqlite, path, self.store.timeout)
        except sqlite3.Error as exc:  # locked past the store's deadline
            log.warning("erasure: could not rebuild the SQLite file now: %s", exc)
            return False


def _scrubbed_current(loaded: LoadedDoc, scrubber: Scrubber) -> bytes:
    current = replay(loaded.snapshot, loaded.numbered_tail()).doc.get_update()
    return scrub(current, scrubber)


async def write_rewritten_lineage(
    conn: AsyncConnection,
    sealing: RowSealing,
    doc_id: int,
    key: DocKey,
    *,
    seq: int,
    pos: int,
    state: bytes,
    at: float,
    version_states: Mapping[int, tuple[bytes, str, str]] | None,
) -> None:
    """Replace a document's stored content with ``state``: the log and quarantine rows deleted,
    the snapshot ``state`` at ``seq`` (feed position ``pos``), every version's state, name and
    author replaced (``version_states``: id -> (state, name, created_by)) or, with ``None``, every
    version dropped. The caller holds the document's row lock. The one place erasure writes
    document bytes: sealed as compaction seals them (a snapshot under its ``upto_seq``, a
    version under its id) when encryption at rest is on."""
    for table in (updates, quarantine, snapshots, served_states):
        await conn.execute(delete(table).where(table.c.doc_id == doc_id))
    stored = await sealing.seal(conn, key, Kind.SNAPSHOT, seq, state)
    await conn.execute(
        snapshots.insert().values(doc_id=doc_id, upto_seq=seq, upto_pos=pos, state=stored, at=at)
    )
    if version_states is None:
        await conn.execute(delete(versions).where(versions.c.doc_id == doc_id))
        return
    for vid, (version_state, name, created_by) in version_states.items():
        await conn.execute(
            sa_update(versions)
            .where(versions.c.id == vid, versions.c.doc_id == doc_id)
            .values(
                state=await sealing.seal(conn, key, Kind.VERSION, vid, version_state),
                name=name,
                created_by=created_by,
            )
        )


def _vacuum_sqlite(path: str, timeout: float) -> bool:
    # A connection of its own: VACUUM cannot run inside a transaction, and the store's
    # connections begin one for every statement (storage/sql.py).
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        conn.execute("PRAGMA secure_delete=ON")
        conn.execute("VACUUM")
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            log.warning("erasure: the WAL could not be emptied now (a reader held it)")
        return not busy
    finally:
        conn.close()
