"""The Store on SQLAlchemy 2 async: SQLite (aiosqlite, the default) and Postgres (psycopg 3).

One implementation serves both databases; the differences (URL scheme, pragmas, upsert syntax)
stay in this module. Every database error leaves as :class:`StoreUnavailable` so the daemon can
tell "the database is away" from a bug.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from pathlib import Path

import psycopg
from sqlalchemy import case, event, func, select, text
from sqlalchemy import update as sa_update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from crdt.protocol import ProtocolError
from crdt.replay import check_stored, replay

from .binary_rows import fetch_rows
from .deadline import operation_deadline, postgres_connect_args
from .erased_principals import erased_tombstone, is_erased
from .feed import FeedPage, read_feed_page
from .history import _stateless, fold_with_versions, store_version_states, versions_to_fold
from .key_ring import KeyRing, refuse_keyless_start
from .lineage_fence import read_fence
from .postgres_append import append_rows
from .row_security import ALL_TENANTS, TenantScope, enter_scope
from .schema import (
    documents,
    feed_position,
    grants,
    migrate,
    new_epoch,
    quarantine,
    snapshots,
    updates,
)
from .sealed_rows import RowSealing
from .sealing import Kind
from .served_state import ServedState, read_served, write_served
from .snapshot_mark import SnapshotMarks
from .sqlite_appender import SqliteAppender
from .store import DocKey, DocMeta, DocumentDeleted, LoadedDoc, NewUpdate, StoreUnavailable

__all__ = ["SqlStore", "engine_url"]

log = logging.getLogger("syncd.storage")

# The SQLite hot path (storage/sqlite_appender.py), on unless SYNCD_SQLITE_APPENDER=0: see open().
_SQLITE_APPENDER = os.environ.get("SYNCD_SQLITE_APPENDER", "1") != "0"

# The deadline of ping(), the health check: shorter than an operation's.
PING_TIMEOUT = 2.0


def engine_url(url: str) -> str:
    """Map a user-facing URL (``postgresql://…``, ``sqlite:///…``) to its async driver."""
    for plain, driver in (
        ("postgresql://", "postgresql+psycopg://"),
        ("postgres://", "postgresql+psycopg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    if url.startswith(("postgresql+psycopg://", "sqlite+aiosqlite://")):
        return url
    raise ValueError(f"unsupported database URL {url!r}: use postgresql://… or sqlite:///…")


def _fold_checked(loaded: LoadedDoc) -> tuple[bytes, dict[int, str]]:
    """The document ``loaded`` holds, as one update with its history, and what was left out."""
    result = replay(
        loaded.snapshot,
        loaded.numbered_tail(),
        skip_gc=True,
        snapshot_checked=loaded.snapshot_checked,
    )
    return result.doc.get_update(), dict(result.skipped)


def _passes_strict_check(state: bytes) -> bool:
    try:
        check_stored(state)
    except ProtocolError:
        return False
    return True


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
        self._insert = sqlite_insert if self.dialect == "sqlite" else pg_insert
        self._appender: SqliteAppender | None = None  # the SQLite hot path, see append()
        self._write_turn = asyncio.Lock()  # with the appender: one SQLite writer at a time
        # Encryption at rest (storage/sealed_rows.py): off without a key ring (a master key).
        self.sealing = RowSealing(key_ring)
        # Snapshots syncd checked need no strict decode on load (storage/snapshot_mark.py).
        self.snapshot_marks = SnapshotMarks(snapshot_key)

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        if self.dialect == "sqlite":
            path = self.url.split(":///", 1)[1] if ":///" in self.url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(
                self.url, pool_size=4, max_overflow=4, pool_timeout=self.timeout
            )
            synchronous = self._sqlite_synchronous
            # Lock waits are SQLite's only unbounded ones: bound them by the same deadline.
            busy_ms = max(1, math.ceil(self.timeout * 1000))

            @event.listens_for(engine.sync_engine, "connect")
            def _pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
                # The sqlite3 module only opens a transaction before writes, so each SELECT
                # would see its own snapshot; emit BEGIN ourselves (below) instead.
                dbapi_conn.isolation_level = None
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute(f"PRAGMA synchronous={synchronous}")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute(f"PRAGMA busy_timeout={busy_ms}")
                cur.close()

            @event.listens_for(engine.sync_engine, "begin")
            def _begin(conn) -> None:  # type: ignore[no-untyped-def]
                # Writers take the write lock up front: a read transaction that later writes
                # fails at once (no busy wait) if another writer committed meanwhile.
                write = conn.get_execution_options().get("syncd_write", False)
                conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
        else:
            options = make_url(self.url).query.get("options")
            engine = create_async_engine(
                self.url,
                pool_size=8,
                max_overflow=4,
                pool_pre_ping=True,  # bounded by the deadline like every other wait
                pool_timeout=self.timeout,
                connect_args=postgres_connect_args(
                    self.timeout, options if isinstance(options, str) else None
                ),
            )
        self._engine = engine
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
        if self.dialect == "sqlite" and path and path != ":memory:" and _SQLITE_APPENDER:
            self._appender = SqliteAppender(
                path, synchronous=synchronous, busy_ms=busy_ms, timeout=self.timeout
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
        """A transaction. ``write=False`` for read-only ones; ``snapshot``: all its reads see
        one state (Postgres REPEATABLE READ; SQLite transactions always do). Everything in it,
        from taking a connection to returning it, shares one deadline (``timeout``, by default
        the store's). ``tenants``: the tenants it touches; on Postgres row-level security hides
        every other tenant's rows from it (none named: it sees no tenant's rows), and
        ``ALL_TENANTS`` is for maintenance only (storage/row_security.py)."""
        if self._engine is None:
            raise StoreUnavailable("store is not open")
        try:
            with operation_deadline(self.timeout if timeout is None else timeout):
                async with self._turn(write), self._engine.connect() as conn:
                    if write and self.dialect == "sqlite":
                        await conn.execution_options(syncd_write=True)
                    if snapshot and self.dialect == "postgresql":
                        await conn.execution_options(isolation_level="REPEATABLE READ")
                    async with conn.begin():
                        await enter_scope(conn, tenants)
                        yield conn
        except (SQLAlchemyError, psycopg.Error) as exc:  # psycopg's own: the append path
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}".splitlines()[0]) from exc
        except OSError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def _turn(self, write: bool) -> AbstractAsyncContextManager[None]:
        return self.write_turn() if write else nullcontext()

    async def ping(self) -> None:
        # /healthz must answer 503 within seconds when the database is silent.
        async with self._begin(write=False, timeout=min(PING_TIMEOUT, self.timeout)) as conn:
            await conn.execute(text("SELECT 1"))

    # -- documents -------------------------------------------------------------------------

    async def create(self, key: DocKey) -> bool:
        async with self._begin(tenants=[key.tenant]) as conn:
            return await self._create(conn, key, time.time())

    async def _create(self, conn: AsyncConnection, key: DocKey, now: float) -> bool:
        # An erased principal's documents never come back (storage/erased_principals.py).
        if await is_erased(conn, key.tenant, key.name.split("/", 1)[0]):
            return False
        stmt = (
            self._insert(documents)
            .values(
                tenant=key.tenant,
                name=key.name,
                seq=0,
                snapshot_seq=0,
                size_bytes=0,
                created_at=now,
                updated_at=now,
                mode="private",
                pruned_pos=0,
                epoch=new_epoch(),
            )
            .on_conflict_do_nothing(index_elements=["tenant", "name"])
            .returning(documents.c.id)
        )
        return (await conn.execute(stmt)).first() is not None

    async def _doc_row(self, conn: AsyncConnection, key: DocKey):  # type: ignore[no-untyped-def]
        stmt = select(documents).where(
            documents.c.tenant == key.tenant, documents.c.name == key.name
        )
        return (await conn.execute(stmt)).first()

    async def _lock_live_doc(self, conn: AsyncConnection, key: DocKey):  # type: ignore[no-untyped-def]
        """The document's row unless it is a tombstone, locked until commit (Postgres; SQLite
        writers hold the database lock anyway), so that ``delete`` cannot commit in between."""
        stmt = (
            select(documents)
            .where(
                documents.c.tenant == key.tenant,
                documents.c.name == key.name,
                documents.c.deleted_at.is_(None),
            )
            .with_for_update()
        )
        return (await conn.execute(stmt)).first()

    async def load(self, key: DocKey, *, include_deleted: bool = False) -> LoadedDoc | None:
        async with self._begin(tenants=[key.tenant], write=False, snapshot=True) as conn:
            doc = await self._doc_row(conn, key)
            if doc is None or (doc.deleted_at is not None and not include_deleted):
                return None  # include_deleted: erasure rewrites documents in the trash too
            # One statement, so snapshot and tail come from one consistent view of the database
            # even if a compaction commits in between. Quarantined rows (and a quarantined
            # snapshot, seq 0) are left out; the tail then starts after the last good snapshot.
            rows = await fetch_rows(
                conn,
                (
                    "WITH snap AS (SELECT upto_seq, upto_pos, state, checked"
                    " FROM syncd_snapshots s"
                    " WHERE s.doc_id = :id AND NOT EXISTS (SELECT 1 FROM syncd_quarantine q"
                    " WHERE q.doc_id = :id AND q.seq = 0))"
                    " SELECT 0 AS part, upto_seq AS seq, upto_pos AS pos, state AS data,"
                    " checked FROM snap"
                    " UNION ALL"
                    " SELECT 1 AS part, seq, pos, data, NULL FROM syncd_updates u"
                    " WHERE u.doc_id = :id"
                    " AND u.seq > COALESCE((SELECT upto_seq FROM snap), 0)"
                    " AND NOT EXISTS (SELECT 1 FROM syncd_quarantine q"
                    " WHERE q.doc_id = :id AND q.seq = u.seq)"
                    " ORDER BY part, seq"
                ),
                {"id": doc.id},
            )
            # SealedRowError (refusing the document) before anything replays a row.
            opened = await self.sealing.open(
                conn,
                key,
                [(Kind.UPDATE if r[0] else Kind.SNAPSHOT, r[1], r[3]) for r in rows],
            )
            if not rows:
                await self.sealing.check_tenant(conn, key)
            fence = await read_fence(conn, doc.id)
            served = await read_served(
                conn, self.sealing, key, doc.id, seq=doc.seq, epoch=doc.epoch
            )
        snapshot: bytes | None = None
        snapshot_seq = 0
        checked = False
        tail: list[bytes] = []
        tail_seqs: list[int] = []
        pos = 0
        for (part, row_seq, row_pos, _, mark), data in zip(rows, opened, strict=True):
            if part == 0:
                snapshot, snapshot_seq = data, row_seq
                checked = self.snapshot_marks.verifies(mark, doc.id, row_seq, data)
            else:
                tail.append(data)
                tail_seqs.append(row_seq)
            pos = row_pos
        return LoadedDoc(
            snapshot,
            snapshot_seq,
            tail,
            doc.seq,
            doc.created_at,
            doc.updated_at,
            pos=pos,
            tail_seqs=tail_seqs,
            epoch=doc.epoch,
            fence=fence,
            snapshot_checked=checked,
            served=served,
        )

    async def mark_snapshot_checked(self, key: DocKey, upto_seq: int, state: bytes) -> None:
        """Mark the snapshot at ``upto_seq`` as checked: a load checked ``state`` (its plaintext)
        with the strict decoder and applied it cleanly (storage/snapshot_mark.py). A snapshot
        replaced meanwhile is left alone (the seq differs), and a mark of other bytes than the
        row holds never verifies."""
        async with self._begin(tenants=[key.tenant]) as conn:
            doc = await self._doc_row(conn, key)
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
            doc = await self._lock_live_doc(conn, key)
            # Written since, or another lineage (erasure, purge and re-creation): not its state.
            if doc is None or doc.seq != served.seq or doc.epoch != epoch:
                return False
            await write_served(
                conn, self.sealing, key, doc.id, epoch=epoch, served=served, at=time.time()
            )
        return True

    async def quarantine(self, key: DocKey, seqs: Mapping[int, str]) -> None:
        async with self._begin(tenants=[key.tenant]) as conn:
            doc = await self._doc_row(conn, key)
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
        async with self._begin(tenants=[key.tenant], write=False) as conn:
            doc = await self._doc_row(conn, key)
            if doc is None or doc.deleted_at is not None:
                return None
            rows = (
                await conn.execute(
                    select(updates.c.seq, updates.c.data)
                    .where(updates.c.doc_id == doc.id, updates.c.seq > after, updates.c.seq <= upto)
                    .order_by(updates.c.seq)
                )
            ).all()
            bad = set(
                (
                    await conn.execute(
                        select(quarantine.c.seq).where(
                            quarantine.c.doc_id == doc.id,
                            quarantine.c.seq > after,
                            quarantine.c.seq <= upto,
                        )
                    )
                ).scalars()
            )
            rows = [r for r in rows if r.seq not in bad] if len(rows) == upto - after else None
            if rows is not None:
                opened = await self.sealing.open(
                    conn, key, [(Kind.UPDATE, r.seq, r.data) for r in rows]
                )
        if rows is None:
            return None  # pruned: the caller reloads the whole document
        return [(r.seq, data) for r, data in zip(rows, opened, strict=True)]

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
            doc = await self._doc_row(conn, key)
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
                doc = await self._doc_row(conn, key)
                if doc is None:
                    await self._create(conn, key, now)
                    doc = await self._doc_row(conn, key)
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
        clean = await asyncio.to_thread(_passes_strict_check, state)
        await self.sealing.ensure_key(self._begin, key.tenant)
        now = time.time()
        async with self._begin(tenants=[key.tenant]) as conn:
            doc = await self._lock_live_doc(conn, key)
            # Deleted meanwhile, or purged and created again: what was folded is another
            # lineage's, and writing it would resurrect erased content.
            if doc is None or doc.epoch != loaded.epoch:
                return loaded.seq
            # Versions made while folding are rebuilt here, before any row is pruned.
            pending = await _stateless(conn, doc.id, loaded.seq)
            await store_version_states(conn, self, doc, pending, at_versions)
            if skipped:
                await self._quarantine(conn, doc.id, skipped, now)
            # The log is append-only, so the state of seqs <= loaded.seq never changes: writing it
            # in a second transaction is safe. The guard keeps a newer snapshot from a racing
            # compaction.
            stored = await self.sealing.seal(conn, key, Kind.SNAPSHOT, loaded.seq, state)
            mark = self.snapshot_marks.mark(doc.id, loaded.seq, state) if clean else None
            values = {
                "upto_seq": loaded.seq,
                "upto_pos": loaded.pos,
                "state": stored,
                "at": now,
                "checked": mark,
            }
            result = await conn.execute(
                sa_update(snapshots)
                .where(snapshots.c.doc_id == doc.id, snapshots.c.upto_seq < loaded.seq)
                .values(**values)
            )
            if result.rowcount == 0:
                await conn.execute(
                    self._insert(snapshots)
                    .values(doc_id=doc.id, **values)
                    .on_conflict_do_nothing(index_elements=["doc_id"])
                )
            # The new snapshot was folded from checked updates: a quarantined older one is gone.
            await conn.execute(
                quarantine.delete().where(quarantine.c.doc_id == doc.id, quarantine.c.seq == 0)
            )
            tail_size = (
                await conn.execute(
                    text(
                        "SELECT COALESCE(SUM(LENGTH(data)), 0) FROM syncd_updates"
                        " WHERE doc_id = :id AND seq > :seq"
                    ),
                    {"id": doc.id, "seq": loaded.seq},
                )
            ).scalar_one()
            await conn.execute(
                sa_update(documents)
                .where(documents.c.id == doc.id, documents.c.snapshot_seq < loaded.seq)
                .values(snapshot_seq=loaded.seq, size_bytes=len(state) + int(tail_size))
            )
            if self.retention_seconds is not None:
                expired = (
                    updates.c.doc_id == doc.id,
                    updates.c.seq <= loaded.seq,
                    updates.c.at < now - self.retention_seconds,
                )
                pruned = (
                    await conn.execute(select(func.max(updates.c.pos)).where(*expired))
                ).scalar_one()
                if pruned is not None:
                    await conn.execute(updates.delete().where(*expired))
                    await conn.execute(
                        sa_update(documents)
                        .where(documents.c.id == doc.id, documents.c.pruned_pos < pruned)
                        .values(pruned_pos=pruned)
                    )
        log.debug("compacted %s up to seq %d (%d bytes)", key, loaded.seq, len(state))
        return loaded.seq

    # -- metadata and access -------------------------------------------------------------------

    async def meta(self, key: DocKey) -> DocMeta | None:
        async with self._begin(tenants=[key.tenant], write=False) as conn:
            return await self._meta(conn, key)

    async def principal_erased(self, tenant: str, sub: str) -> bool:
        """Whether ``sub`` was erased in ``tenant`` (``storage/erased_principals.py``): a token
        of theirs still within its lifetime must not write their name anywhere again."""
        async with self._begin(tenants=[tenant], write=False) as conn:
            return await is_erased(conn, tenant, sub)

    async def _meta(self, conn: AsyncConnection, key: DocKey) -> DocMeta | None:
        doc = await self._doc_row(conn, key)
        if doc is None:
            # An erased principal's documents answer as purged tombstones, with no row to
            # carry the name (storage/erased_principals.py).
            owner = key.name.split("/", 1)[0]
            return erased_tombstone(key) if await is_erased(conn, key.tenant, owner) else None
        rows = await conn.execute(
            select(grants.c.principal, grants.c.role).where(grants.c.doc_id == doc.id)
        )
        return DocMeta(
            key=key,
            mode=doc.mode,
            grants={p: r for p, r in rows},
            seq=doc.seq,
            size_bytes=doc.size_bytes,
            created_at=doc.created_at,
            updated_at=doc.updated_at,
            deleted=doc.deleted_at is not None,
            epoch=doc.epoch,
            deleted_at=doc.deleted_at,
            purged=doc.purged_at is not None,
        )

    async def set_access(self, key: DocKey, mode: str, new_grants: Mapping[str, str]) -> DocMeta:
        async with self._begin(tenants=[key.tenant]) as conn:
            doc = await self._doc_row(conn, key)
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
            meta = await self._meta(conn, key)
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
        async with self._begin(tenants=[key.tenant], write=False, snapshot=True) as conn:
            doc = await self._doc_row(conn, key)
            if doc is None:
                return None
            bad = set(
                (
                    await conn.execute(
                        select(quarantine.c.seq).where(quarantine.c.doc_id == doc.id)
                    )
                ).scalars()
            )
            snap = None
            if 0 not in bad:
                snap = (
                    await conn.execute(
                        select(snapshots.c.upto_seq, snapshots.c.state).where(
                            snapshots.c.doc_id == doc.id, snapshots.c.upto_seq < seq
                        )
                    )
                ).first()
            start = snap.upto_seq if snap is not None else 0
            rows = (
                await conn.execute(
                    select(updates.c.seq, updates.c.data)
                    .where(updates.c.doc_id == doc.id, updates.c.seq > start, updates.c.seq < seq)
                    .order_by(updates.c.seq)
                )
            ).all()
            if len(rows) != seq - 1 - start:
                return None
            rows = [r for r in rows if r.seq not in bad]
            opened = await self.sealing.open(
                conn,
                key,
                ([(Kind.SNAPSHOT, snap.upto_seq, snap.state)] if snap is not None else [])
                + [(Kind.UPDATE, r.seq, r.data) for r in rows],
            )
        if snap is not None:
            snap_state, opened = opened[0], opened[1:]
        loaded = LoadedDoc(
            snap_state if snap is not None else None,
            start,
            opened,
            seq - 1,
            0.0,
            0.0,
            tail_seqs=[r.seq for r in rows],
        )
        state, _ = await asyncio.to_thread(_fold_checked, loaded)
        return state
