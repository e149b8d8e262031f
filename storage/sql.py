"""The Store on SQLAlchemy 2 async: SQLite (aiosqlite, the default) and Postgres (psycopg 3).

One implementation serves both databases; the differences (URL scheme, pragmas, upsert syntax)
stay in ``storage/engine.py``, which also turns every database error into
:class:`StoreUnavailable` so the daemon can tell "the database is away" from a bug. This class
is what callers use: the lifecycle, the write paths (append, compaction, access, deletion) and
the reads, with the load path in ``storage/loading.py``, a document's row in
``storage/document_rows.py`` and compaction's writes in ``storage/compaction.py``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any

from sqlalchemy import Row, case, select, text
from sqlalchemy import update as sa_update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from . import loading
from .compaction import passes_strict_check, prune_folded, write_snapshot
from .document_rows import create_document, document_row, lock_live_document, read_meta
from .engine import (
    busy_timeout_ms,
    dialect_insert,
    engine_url,
    make_engine,
    sqlite_file,
    transaction,
)
from .erased_principals import is_erased
from .feed import FeedPage, read_feed_page
from .history import _stateless, fold_with_versions, store_version_states, versions_to_fold
from .key_ring import KeyRing, refuse_keyless_start
from .postgres_append import append_rows
from .row_security import ALL_TENANTS, TenantScope
from .schema import (
    documents,
    feed_position,
    grants,
    migrate,
    quarantine,
    snapshots,
    updates,
)
from .sealed_rows import RowSealing
from .sealing import Kind
from .served_state import ServedState, write_served
from .snapshot_mark import SnapshotMarks
from .sqlite_appender import SqliteAppender
from .store import DocKey, DocMeta, DocumentDeleted, LoadedDoc, NewUpdate, StoreUnavailable

__all__ = ["SqlStore"]

log = logging.getLogger("syncd.storage")

# The SQLite hot path (storage/sqlite_appender.py), on unless SYNCD_SQLITE_APPENDER=0: see open().
_SQLITE_APPENDER = os.environ.get("SYNCD_SQLITE_APPENDER", "1") != "0"

# The deadline of ping(), the health check: shorter than an operation's.
PING_TIMEOUT = 2.0


class SqlStore:
    """The Store for SQLite and Postgres.

    Args:
        url: ``sqlite:///path/to/file.db`` or ``postgresql://user@host/db``.
        retention_seconds: how long log rows folded into a snapshot are kept (history for
            versions and per-principal rollback); ``None`` keeps them forever.
        sqlite_synchronous: SQLite's ``synchronous`` pragma; ``FULL`` survives power loss,
            ``NORMAL`` (with WAL) survives a killed process but not a power cut.
        timeout_seconds: the deadline of every operation (a transaction, from taking a
            connection to its commit); past it the operation fails with
            :class:`StoreUnavailable`. See ``storage/deadline.py``.
    """

    def __init__(
        self,
        url: str,
        *,
        retention_seconds: float | None = 30 * 24 * 3600,
        sqlite_synchronous: str = "FULL",
        timeout_seconds: float = 5.0,
        key_ring: KeyRing | None = None,
        snapshot_key: bytes | None = None,
    ) -> None:
        self.url = engine_url(url)
        self.retention_seconds = retention_seconds
        self._sqlite_synchronous = sqlite_synchronous
        if not timeout_seconds > 0:
            raise ValueError(f"timeout_seconds must be positive, not {timeout_seconds!r}")
        self.timeout = timeout_seconds
        self._engine: AsyncEngine | None = None
        self._ids: dict[DocKey, int] = {}  # document row ids, which never change
        self.dialect = "sqlite" if self.url.startswith("sqlite") else "postgresql"
        self._insert = dialect_insert(self.dialect)
        self._appender: SqliteAppender | None = None  # the SQLite hot path, see append()
        self._write_turn = asyncio.Lock()  # with the appender: one SQLite writer at a time
        # Encryption at rest (storage/sealed_rows.py): off without a key ring (a master key).
        self.sealing = RowSealing(key_ring)
        # Snapshots syncd checked need no strict decode on load (storage/snapshot_mark.py).
        self.snapshot_marks = SnapshotMarks(snapshot_key)

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        self._engine = make_engine(
            self.url, timeout=self.timeout, sqlite_synchronous=self._sqlite_synchronous
        )
        # Migrations span tenants: the one start-up path that names them all.
        async with self._begin(tenants=ALL_TENANTS) as conn:
            await migrate(conn)
            if self.sealing.ring is not None:  # MasterKeyError: not the key that wrapped them
                await self.sealing.ring.verify(conn)
            else:  # MasterKeyError: this database is sealed, a key is needed
                await refuse_keyless_start(conn)
        # Its thread has a connection of its own. Under a sustained stream of appends it would
        # take SQLite's write lock back to back, and a delete or compaction waiting in
        # busy_timeout could starve (test_append_racing_delete_stores_nothing_after_the_tombstone
        # caught it): so every SQLite write, the appender's and the pool's, takes its turn
        # first (``write_turn``, FIFO), and SQLite's lock is never contended within a process.
        path = sqlite_file(self.url) if self.dialect == "sqlite" else None
        if path is not None and _SQLITE_APPENDER:
            self._appender = SqliteAppender(
                path,
                synchronous=self._sqlite_synchronous,
                busy_ms=busy_timeout_ms(self.timeout),
                timeout=self.timeout,
            )

    async def close(self) -> None:
        if self._appender is not None:
            await asyncio.to_thread(self._appender.close)
            self._appender = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    @asynccontextmanager
    async def write_turn(self) -> AsyncIterator[None]:
        """Hold the process's turn to write a SQLite file shared with the appender's thread
        (first come, first served); nothing elsewhere. Every write transaction takes it, and
        so must anything writing the file through a connection of its own (VACUUM)."""
        if self._appender is None:
            yield
            return
        async with self._write_turn:
            yield

    @asynccontextmanager
    async def _begin(
        self,
        *,
        write: bool = True,
        snapshot: bool = False,
        timeout: float | None = None,
        tenants: TenantScope = (),
    ) -> AsyncIterator[AsyncConnection]:
        """A transaction (``storage/engine.py``: :func:`~storage.engine.transaction`), under the
        store's deadline unless ``timeout``; a write one takes its turn first (``write_turn``)."""
        if self._engine is None:
            raise StoreUnavailable("store is not open")
        async with transaction(
            self._engine,
            self._turn(write),
            write=write,
            snapshot=snapshot,
            timeout=self.timeout if timeout is None else timeout,
            tenants=tenants,
        ) as conn:
            yield conn

    def _turn(self, write: bool) -> AbstractAsyncContextManager[None]:
        return self.write_turn() if write else nullcontext()

    async def ping(self) -> None:
        # /healthz must answer 503 within seconds when the database is silent.
        async with self._begin(write=False, timeout=min(PING_TIMEOUT, self.timeout)) as conn:
            await conn.execute(text("SELECT 1"))

    # -- documents -------------------------------------------------------------------------

    async def create(self, key: DocKey) -> bool:
        async with self._begin(tenants=[key.tenant]) as conn:
            return await create_document(conn, key, time.time())

    # The modules working on the store's rows (storage/history.py, trash.py, ...) reach a
    # document's row through these (storage/document_rows.py).

    async def _create(self, conn: AsyncConnection, key: DocKey, now: float) -> bool:
        return await create_document(conn, key, now)

    async def _doc_row(self, conn: AsyncConnection, key: DocKey) -> Row[Any] | None:
        return await document_row(conn, key)

    async def _lock_live_doc(self, conn: AsyncConnection, key: DocKey) -> Row[Any] | None:
        return await lock_live_document(conn, key)

    async def _meta(self, conn: AsyncConnection, key: DocKey) -> DocMeta | None:
        return await read_meta(conn, key)

    async def load(self, key: DocKey, *, include_deleted: bool = False) -> LoadedDoc | None:
        return await loading.load_document(
            self._begin,
            key,
            include_deleted=include_deleted,
            sealing=self.sealing,
            snapshot_marks=self.snapshot_marks,
        )

    async def mark_snapshot_checked(self, key: DocKey, upto_seq: int, state: bytes) -> None:
        """Mark the snapshot at ``upto_seq`` as checked: a load checked ``state`` (its plaintext)
        with the strict decoder and applied it cleanly (storage/snapshot_mark.py). A snapshot
        replaced meanwhile is left alone (the seq differs), and a mark of other bytes than the
        row holds never verifies."""
        async with self._begin(tenants=[key.tenant]) as conn:
            doc = await document_row(conn, key)
            if doc is None:
                return
            await conn.execute(
                sa_update(snapshots)
                .where(snapshots.c.doc_id == doc.id, snapshots.c.upto_seq == upto_seq)
                .values(checked=self.snapshot_marks.mark(doc.id, upto_seq, state))
            )

    async def save_served_state(self, key: DocKey, epoch: str, served: ServedState) -> bool:
        await self.sealing.ensure_key(self._begin, key.tenant)
        async with self._begin(tenants=[key.tenant]) as conn:
            doc = await lock_live_document(conn, key)
            # Written since, or another lineage (erasure, purge and re-creation): not its state.
            if doc is None or doc.seq != served.seq or doc.epoch != epoch:
                return False
            await write_served(
                conn, self.sealing, key, doc.id, epoch=epoch, served=served, at=time.time()
            )
        return True

    async def quarantine(self, key: DocKey, seqs: Mapping[int, str]) -> None:
        async with self._begin(tenants=[key.tenant]) as conn:
            doc = await document_row(conn, key)
            if doc is None or not seqs:
                return
            await self._quarantine(conn, doc.id, seqs, time.time())

    async def _quarantine(
        self, conn: AsyncConnection, doc_id: int, seqs: Mapping[int, str], now: float
    ) -> None:
        await conn.execute(
            self._insert(quarantine)
            .values(
                [
                    {"doc_id": doc_id, "seq": seq, "reason": reason[:200], "at": now}
                    for seq, reason in seqs.items()
                ]
            )
            .on_conflict_do_nothing(index_elements=["doc_id", "seq"])
        )

    async def updates_between(
        self, key: DocKey, after: int, upto: int
    ) -> list[tuple[int, bytes]] | None:
        return await loading.updates_between(self._begin, key, after, upto, sealing=self.sealing)

    async def seqs(self, keys: Sequence[DocKey]) -> dict[DocKey, int]:
        if not keys:
            return {}
        out: dict[DocKey, int] = {}
        async with self._begin(tenants={k.tenant for k in keys}, write=False) as conn:
            for tenant in {k.tenant for k in keys}:
                names = [k.name for k in keys if k.tenant == tenant]
                rows = await conn.execute(
                    select(documents.c.name, documents.c.seq).where(
                        documents.c.tenant == tenant,
                        documents.c.name.in_(names),
                        documents.c.deleted_at.is_(None),
                    )
                )
                out.update({DocKey(tenant, name): seq for name, seq in rows})
        return out

    async def quarantined(self, key: DocKey) -> dict[int, str]:
        async with self._begin(tenants=[key.tenant], write=False) as conn:
            doc = await document_row(conn, key)
            if doc is None:
                return {}
            rows = await conn.execute(
                select(quarantine.c.seq, quarantine.c.reason).where(quarantine.c.doc_id == doc.id)
            )
            return {seq: reason for seq, reason in rows}

    async def append(
        self, batch: Mapping[DocKey, Sequence[NewUpdate]]
    ) -> dict[DocKey, list[int] | DocumentDeleted]:
        now = time.time()
        batch = {key: items for key, items in batch.items() if items}
        seqs: dict[DocKey, list[int] | DocumentDeleted] = {key: [] for key in batch}
        total = sum(len(items) for items in batch.values())
        if total == 0:
            return seqs
        if any(key not in self._ids for key in batch):  # rare: rooms create on load
            # In a transaction of its own: the append's must take the feed-position lock first.
            async with self._begin(tenants={key.tenant for key in batch}) as conn:
                await self._doc_ids(conn, batch.keys(), now)
        ids = {key: self._ids[key] for key in batch}
        # Keys fetched before the transaction (None without a master key): rows are sealed
        # once their seq is known, inside it.
        seal = await self.sealing.sealer(self._begin, {key.tenant for key in batch})
        if self._appender is not None:
            async with self._write_turn:
                return await self._appender.append(batch, ids, now, seal)
        if self.dialect == "postgresql":
            async with self._begin() as conn:  # append_rows names the tenants, see there
                raw = (await conn.get_raw_connection()).driver_connection
                return await append_rows(raw, batch, ids, now, seal)
        async with self._begin(tenants={key.tenant for key in batch}) as conn:
            # Feed positions first: the lock on this row is held until commit, which serialises
            # the commits of concurrent appenders (other nodes) and so orders positions by commit
            # (and, taken first by everyone, it also rules out deadlocks on document rows).
            last_pos = (
                await conn.execute(
                    sa_update(feed_position)
                    .where(feed_position.c.id == 1)
                    .values(pos=feed_position.c.pos + total)
                    .returning(feed_position.c.pos)
                )
            ).scalar_one()
            ids = await self._doc_ids(conn, batch.keys(), now)
            # One statement bumps every document's seq, whatever the batch size. Tombstones are
            # left alone: on Postgres a delete committing meanwhile holds the row lock, and the
            # condition is checked again on the row it committed (see ``delete``).
            counts = {ids[key]: len(items) for key, items in batch.items()}
            sizes = {ids[key]: sum(len(u.data) for u in items) for key, items in batch.items()}
            bumped = await conn.execute(
                sa_update(documents)
                .where(documents.c.id.in_(list(counts)), documents.c.deleted_at.is_(None))
                .values(
                    seq=documents.c.seq + case(counts, value=documents.c.id),
                    size_bytes=documents.c.size_bytes + case(sizes, value=documents.c.id),
                    updated_at=now,
                )
                .returning(documents.c.id, documents.c.seq)
            )
            last_seq = dict(bumped.all())
            rows: list[dict[str, object]] = []
            next_pos = last_pos - total + 1
            for key in sorted(batch):
                items = batch[key]
                doc_id = ids[key]
                if doc_id not in last_seq:
                    # Deleted: nothing of it is stored; its feed positions stay unused (a gap,
                    # like a rolled-back transaction's).
                    seqs[key] = DocumentDeleted(key)
                    continue
                first = last_seq[doc_id] - len(items) + 1
                seqs[key] = list(range(first, first + len(items)))
                for offset, item in enumerate(items):
                    data = item.data if seal is None else seal(key, first + offset, item.data)
                    rows.append(
                        {
                            "pos": next_pos,
                            "doc_id": doc_id,
                            "seq": first + offset,
                            "principal": item.principal,
                            "origin": item.origin,
                            "at": now,
                            "data": data,
                        }
                    )
                    next_pos += 1
            if rows:
                await conn.execute(updates.insert(), rows)
        return seqs

    async def _doc_ids(
        self, conn: AsyncConnection, keys: Iterable[DocKey], now: float
    ) -> dict[DocKey, int]:
        """Row ids of documents (created if missing), cached: ids never change once given."""
        ids = {key: self._ids[key] for key in keys if key in self._ids}
        for key in keys:
            if key not in ids:
                doc = await document_row(conn, key)
                if doc is None:
                    await create_document(conn, key, now)
                    doc = await document_row(conn, key)
                assert doc is not None
                ids[key] = self._ids[key] = doc.id
        return ids

    async def compact(self, key: DocKey) -> int:
        loaded = await self.load(key)
        if loaded is None:
            raise KeyError(str(key))
        if not loaded.tail:
            return loaded.snapshot_seq
        # Versions this fold passes keep their own state from now on (storage/history.py).
        pending = await versions_to_fold(self, key, loaded.seq)
        # CPU-bound; a worker thread lets the event loop interleave with it. Kept history (no
        # garbage collection); an update that cannot be folded is quarantined, not folded.
        state, skipped, at_versions = await asyncio.to_thread(
            fold_with_versions, loaded, [seq for _, seq in pending]
        )
        # The fold's own bytes pass the strict decoder before they are marked as checked: then a
        # load trusts exactly what a load would have checked (storage/snapshot_mark.py).
        clean = await asyncio.to_thread(passes_strict_check, state)
        await self.sealing.ensure_key(self._begin, key.tenant)
        now = time.time()
        async with self._begin(tenants=[key.tenant]) as conn:
            doc = await lock_live_document(conn, key)
            # Deleted meanwhile, or purged and created again: what was folded is another
            # lineage's, and writing it would resurrect erased content.
            if doc is None or doc.epoch != loaded.epoch:
                return loaded.seq
            # Versions made while folding are rebuilt here, before any row is pruned.
            pending = await _stateless(conn, doc.id, loaded.seq)
            await store_version_states(conn, self, doc, pending, at_versions)
            if skipped:
                await self._quarantine(conn, doc.id, skipped, now)
            # Safe in this second transaction, guarded against a racing compaction: see
            # storage/compaction.py.
            stored = await self.sealing.seal(conn, key, Kind.SNAPSHOT, loaded.seq, state)
            mark = self.snapshot_marks.mark(doc.id, loaded.seq, state) if clean else None
            await write_snapshot(conn, doc.id, loaded, stored, mark, len(state), now)
            if self.retention_seconds is not None:
                await prune_folded(conn, doc.id, loaded.seq, now - self.retention_seconds)
        log.debug("compacted %s up to seq %d (%d bytes)", key, loaded.seq, len(state))
        return loaded.seq

    # -- metadata and access -------------------------------------------------------------------

    async def meta(self, key: DocKey) -> DocMeta | None:
        async with self._begin(tenants=[key.tenant], write=False) as conn:
            return await read_meta(conn, key)

    async def principal_erased(self, tenant: str, sub: str) -> bool:
        """Whether ``sub`` was erased in ``tenant`` (``storage/erased_principals.py``): a token
        of theirs still within its lifetime must not write their name anywhere again."""
        async with self._begin(tenants=[tenant], write=False) as conn:
            return await is_erased(conn, tenant, sub)

    async def set_access(self, key: DocKey, mode: str, new_grants: Mapping[str, str]) -> DocMeta:
        async with self._begin(tenants=[key.tenant]) as conn:
            doc = await document_row(conn, key)
            if doc is None or doc.deleted_at is not None:
                raise KeyError(str(key))
            await conn.execute(
                sa_update(documents).where(documents.c.id == doc.id).values(mode=mode)
            )
            await conn.execute(grants.delete().where(grants.c.doc_id == doc.id))
            if new_grants:
                await conn.execute(
                    grants.insert(),
                    [{"doc_id": doc.id, "principal": p, "role": r} for p, r in new_grants.items()],
                )
            meta = await read_meta(conn, key)
        assert meta is not None
        return meta

    async def delete(self, key: DocKey) -> bool:
        async with self._begin(tenants=[key.tenant]) as conn:
            now = time.time()
            # The tombstone locks the document's row until commit, so an append or a compaction
            # racing this delete either committed before it (and what it wrote goes to the
            # trash with the rest) or waits and then finds the tombstone and writes nothing.
            # The content stays for a restore from the trash; storage/trash.py erases it.
            doc_id = (
                await conn.execute(
                    sa_update(documents)
                    .where(
                        documents.c.tenant == key.tenant,
                        documents.c.name == key.name,
                        documents.c.deleted_at.is_(None),
                    )
                    .values(deleted_at=now, updated_at=now)
                    .returning(documents.c.id)
                )
            ).scalar_one_or_none()
        return doc_id is not None

    # -- change feed ---------------------------------------------------------------------------

    async def read_feed(
        self, tenant: str, after: int, *, prefix: str | None = None, limit: int = 100
    ) -> FeedPage:
        async with self._begin(tenants=[tenant], write=False, snapshot=True) as conn:
            return await read_feed_page(conn, tenant, after, prefix, limit, sealing=self.sealing)

    async def state_before(self, key: DocKey, seq: int) -> bytes | None:
        """The document as it was just before update ``seq`` (one update), or ``None`` if that
        history is no longer complete (pruned by retention)."""
        return await loading.state_before(self._begin, key, seq, sealing=self.sealing)
