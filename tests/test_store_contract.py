"""One contract, every backend: the same test bodies run on SQLite and Postgres."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator

import psycopg
import pycrdt
import pytest

from storage import (
    DocKey,
    DocumentDeleted,
    GroupCommit,
    NewUpdate,
    SqlStore,
    Store,
    StoreUnavailable,
)
from storage.trash import SqlTrash
from syncd.metrics import Metrics
from syncd.rooms import DocumentNotFound, Rooms
from syncd.settings import Settings
from tests.support.updates import text_updates

pytestmark = pytest.mark.anyio




def replay(loaded) -> pycrdt.Doc:  # type: ignore[no-untyped-def]
    doc = pycrdt.Doc()
    if loaded.snapshot:
        doc.apply_update(loaded.snapshot)
    for u in loaded.tail:
        doc.apply_update(u)
    return doc


async def test_missing_document_loads_as_none(store: Store):
    assert await store.load(DocKey("default", "alice/none")) is None


async def test_create_is_idempotent(store: Store):
    key = DocKey("default", "alice/a")
    assert await store.create(key) is True
    assert await store.create(key) is False
    loaded = await store.load(key)
    assert loaded is not None and loaded.seq == 0 and loaded.tail == [] and loaded.snapshot is None


async def test_append_assigns_dense_seqs_and_load_replays(store: Store):
    key = DocKey("default", "alice/a")
    ups, expected = text_updates(10)
    first = await store.append({key: [NewUpdate(u, "alice", "client") for u in ups[:4]]})
    second = await store.append({key: [NewUpdate(u, "alice", "client") for u in ups[4:]]})
    assert first[key] == [1, 2, 3, 4]
    assert second[key] == list(range(5, 11))
    loaded = await store.load(key)
    assert loaded.seq == 10 and len(loaded.tail) == 10
    assert str(replay(loaded).get("t", type=pycrdt.Text)) == expected


async def test_one_transaction_spans_documents(store: Store):
    a, b = DocKey("default", "alice/a"), DocKey("default", "bob/b")
    ups, _ = text_updates(3)
    seqs = await store.append(
        {a: [NewUpdate(ups[0], "alice", "client")], b: [NewUpdate(u, "bob", "client") for u in ups]}
    )
    assert seqs == {a: [1], b: [1, 2, 3]}


async def test_tenants_are_separate(store: Store):
    ups, _ = text_updates(2)
    one, two = DocKey("t1", "alice/j"), DocKey("t2", "alice/j")
    await store.append({one: [NewUpdate(ups[0], "alice", "client")]})
    assert await store.load(two) is None
    await store.append({two: [NewUpdate(u, "alice", "client") for u in ups]})
    assert (await store.load(one)).seq == 1
    assert (await store.load(two)).seq == 2


async def test_compaction_folds_the_log_into_a_snapshot(store: Store):
    key = DocKey("default", "alice/c")
    ups, expected = text_updates(50)
    await store.append({key: [NewUpdate(u, "alice", "client") for u in ups]})
    assert await store.compact(key) == 50
    loaded = await store.load(key)
    assert loaded.snapshot is not None and loaded.snapshot_seq == 50 and loaded.tail == []
    assert str(replay(loaded).get("t", type=pycrdt.Text)) == expected
    # Later appends continue the sequence and load as snapshot + short tail.
    more, _ = text_updates(55)
    seqs = await store.append({key: [NewUpdate(u, "alice", "client") for u in more[50:]]})
    assert seqs[key] == [51, 52, 53, 54, 55]
    loaded = await store.load(key)
    assert loaded.snapshot_seq == 50 and len(loaded.tail) == 5 and loaded.seq == 55


async def test_compaction_under_concurrent_appends_loses_nothing(store: Store):
    key = DocKey("default", "alice/busy")
    writers = 4
    per_writer = 60
    all_updates = {w: text_updates(per_writer, client_id=100 + w)[0] for w in range(writers)}

    async def writer(w: int) -> None:
        for u in all_updates[w]:
            await store.append({key: [NewUpdate(u, f"w{w}", "client")]})

    async def compactor() -> None:
        for _ in range(15):
            if await store.load(key) is not None:
                await store.compact(key)
            await asyncio.sleep(0)

    await asyncio.gather(*(writer(w) for w in range(writers)), compactor())
    await store.compact(key)
    loaded = await store.load(key)
    assert loaded.seq == writers * per_writer
    doc = replay(loaded)
    expected = pycrdt.Doc()
    for ups in all_updates.values():
        for u in ups:
            expected.apply_update(u)
    assert str(doc.get("t", type=pycrdt.Text)) == str(expected.get("t", type=pycrdt.Text))


async def test_retention_keeps_folded_history_until_it_expires(database_url: str):
    key = DocKey("default", "alice/h")
    keep = SqlStore(database_url, retention_seconds=None)
    await keep.open()
    try:
        ups, _ = text_updates(5)
        await keep.append({key: [NewUpdate(u, "alice", "client") for u in ups]})
        await keep.compact(key)
        assert await _log_rows(keep, key) == 5  # folded, not destroyed
    finally:
        await keep.close()
    drop = SqlStore(database_url, retention_seconds=0)
    await drop.open()
    try:
        more, _ = text_updates(6)
        await drop.append({key: [NewUpdate(more[5], "alice", "client")]})
        await drop.compact(key)
        assert await _log_rows(drop, key) == 0
        assert (await drop.load(key)).seq == 6
    finally:
        await drop.close()


async def _log_rows(store: SqlStore, key: DocKey) -> int:
    from sqlalchemy import func, select

    from storage.schema import documents, updates

    async with store._begin() as conn:
        return (
            await conn.execute(
                select(func.count())
                .select_from(updates.join(documents))
                .where(documents.c.tenant == key.tenant, documents.c.name == key.name)
            )
        ).scalar_one()


async def test_group_commit_batches_and_orders(store: Store):
    commit = GroupCommit(store)
    commit.start()
    try:
        key = DocKey("default", "alice/g")
        ups, expected = text_updates(40)
        results = await asyncio.gather(
            *(commit.submit(key, [NewUpdate(u, "alice", "client")]) for u in ups)
        )
        assert sorted(s for r in results for s in r) == list(range(1, 41))
        loaded = await store.load(key)
        assert str(replay(loaded).get("t", type=pycrdt.Text)) == expected
    finally:
        await commit.stop()


async def test_concurrent_loads_share_one_room(store: Store, tmp_path):
    commit = GroupCommit(store)
    commit.start()
    loads = 0
    original = store.load

    async def counting_load(key):  # type: ignore[no-untyped-def]
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.01)  # widen the window in which a second load could start
        return await original(key)

    store.load = counting_load  # type: ignore[method-assign]
    rooms = Rooms(store, commit, Settings(data_dir=tmp_path), Metrics())
    try:
        key = DocKey("default", "alice/dedup")
        got = await asyncio.gather(*(rooms.acquire(key, create=True) for _ in range(20)))
        assert len({id(r) for r in got}) == 1
        assert loads == 2  # one load that found nothing, one after creating it
        with pytest.raises(DocumentNotFound):
            await rooms.acquire(DocKey("default", "alice/absent"), create=False)
    finally:
        await rooms.close()
        await commit.stop()


async def test_access_settings_and_tombstones(store: Store):
    key = DocKey("default", "alice/shared")
    assert await store.meta(key) is None
    await store.create(key)
    meta = await store.meta(key)
    assert meta.mode == "private" and meta.grants == {} and meta.owner == "alice"
    meta = await store.set_access(key, "shared", {"bob": "viewer", "carol": "editor"})
    assert meta.mode == "shared" and meta.grants == {"bob": "viewer", "carol": "editor"}
    meta = await store.set_access(key, "shared", {"bob": "editor"})
    assert meta.grants == {"bob": "editor"}
    ups, _ = text_updates(3)
    await store.append({key: [NewUpdate(u, "alice", "client") for u in ups]})
    assert await store.delete(key) is True
    assert await store.delete(key) is False
    gone = await store.meta(key)
    # In the trash: refused everywhere, its access kept for a restore (storage/trash.py).
    assert gone.deleted and not gone.purged and gone.grants == {"bob": "editor"}
    assert await store.load(key) is None
    assert await store.create(key) is False  # the tombstone keeps the id taken
    with pytest.raises(KeyError):
        await store.set_access(key, "private", {})
    assert await SqlTrash(store).purge(key) is True  # type: ignore[arg-type]
    purged = await store.meta(key)
    assert purged.deleted and purged.purged and purged.grants == {} and purged.mode == "private"
    assert await store.create(key) is False
    with pytest.raises(KeyError):
        await store.set_access(DocKey("default", "alice/none"), "private", {})


# -- deletion is final --------------------------------------------------------------------------


async def _trashed_then_purged(store: SqlStore, key: DocKey) -> None:
    """A deleted document keeps, in the trash, exactly the updates committed before its
    tombstone (``seq`` stopped there); its purge leaves nothing."""
    meta = await store.meta(key)
    assert meta is not None and meta.deleted
    rows, _ = await _content_rows(store, key)
    assert rows == meta.seq
    assert await SqlTrash(store).purge(key) is True
    assert await _content_rows(store, key) == (0, 0)


async def _content_rows(store: SqlStore, key: DocKey) -> tuple[int, int]:
    """(log rows, snapshots) the database still holds for ``key``."""
    from sqlalchemy import func, select

    from storage.schema import documents, snapshots, updates

    async with store._begin(write=False) as conn:
        doc_id = (
            await conn.execute(
                select(documents.c.id).where(
                    documents.c.tenant == key.tenant, documents.c.name == key.name
                )
            )
        ).scalar_one()
        rows = (
            await conn.execute(select(func.count()).where(updates.c.doc_id == doc_id))
        ).scalar_one()
        snaps = (
            await conn.execute(select(func.count()).where(snapshots.c.doc_id == doc_id))
        ).scalar_one()
    return rows, snaps


async def test_append_racing_delete_stores_nothing_after_the_tombstone(store: SqlStore):
    doomed = DocKey("default", "alice/doomed")
    # More than enough: writers go on until they are refused (on SQLite the delete may wait
    # a while for a turn at the write lock).
    ups, _ = text_updates(1000, client_id=7)
    first_stored = asyncio.Event()
    kept: dict[int, list[int]] = {}
    refused: list[int] = []

    async def writer(w: int) -> None:
        # Each round also writes a document of its own: a refusal must not fail it.
        other = DocKey("default", f"bob/kept-{w}")
        mine, _ = text_updates(len(ups), client_id=20 + w)
        for i, u in enumerate(ups):
            got = await store.append(
                {
                    doomed: [NewUpdate(u, "alice", "client")],
                    other: [NewUpdate(mine[i], "bob", "client")],
                }
            )
            kept.setdefault(w, []).extend(got[other])  # type: ignore[arg-type]
            first_stored.set()
            if isinstance(got[doomed], DocumentDeleted):
                refused.append(w)
                return

    async def deleter() -> None:
        await first_stored.wait()
        assert await store.delete(doomed) is True

    async with asyncio.timeout(60):
        await asyncio.gather(writer(0), writer(1), deleter())
    assert sorted(refused) == [0, 1]  # every writer ended with a refusal
    await _trashed_then_purged(store, doomed)
    assert await store.load(doomed) is None and (await store.meta(doomed)).deleted
    for w, seqs in kept.items():  # the other documents lost nothing
        assert seqs == list(range(1, len(seqs) + 1))
        assert (await store.meta(DocKey("default", f"bob/kept-{w}"))).seq == len(seqs)
    page = await store.read_feed("default", 0, limit=1000)
    assert {e.doc for e in page.events} == {"bob/kept-0", "bob/kept-1"}


async def _wait_until_blocked(postgres_url: str, statement: str) -> None:
    """Positive evidence that a session waits on a lock: it shows in pg_stat_activity."""
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as watcher:
        async with asyncio.timeout(10):
            while True:
                cur = await watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE %s",
                    (statement + "%",),
                )
                if (await cur.fetchone())[0] >= 1:  # type: ignore[index]
                    return
                await asyncio.sleep(0.01)  # polling another process's state


@pytest.mark.postgres
async def test_append_waiting_for_its_turn_refuses_a_document_deleted_meanwhile(postgres_url):
    """The race of issue 8: a write already on its way when the DELETE commits."""
    store = SqlStore(postgres_url)
    await store.open()
    try:
        doomed, other = DocKey("default", "alice/doomed"), DocKey("default", "bob/kept")
        ups, _ = text_updates(2)
        await store.append({doomed: [NewUpdate(ups[0], "alice", "client")]})
        async with await psycopg.AsyncConnection.connect(postgres_url) as node:
            # Another node's append holds the feed-position row: ours queues behind it.
            await node.execute("UPDATE syncd_feed_position SET pos = pos WHERE id = 1")
            later = asyncio.create_task(
                store.append(
                    {
                        doomed: [NewUpdate(ups[1], "alice", "client")],
                        other: [NewUpdate(ups[0], "bob", "client")],
                    }
                )
            )
            await _wait_until_blocked(postgres_url, "UPDATE syncd_feed_position")
            assert await store.delete(doomed) is True  # needs no feed position
            await node.rollback()
        got = await later
        assert isinstance(got[doomed], DocumentDeleted) and got[other] == [1]
        await _trashed_then_purged(store, doomed)
    finally:
        await store.close()


@pytest.mark.postgres
async def test_append_waiting_on_a_deleting_transaction_refuses_its_document(postgres_url):
    """The other order: the delete's tombstone (first statement) is there, uncommitted."""
    store = SqlStore(postgres_url)
    await store.open()
    try:
        doomed = DocKey("default", "alice/doomed")
        ups, _ = text_updates(2)
        await store.append({doomed: [NewUpdate(ups[0], "alice", "client")]})
        async with await psycopg.AsyncConnection.connect(postgres_url) as deleting:
            await deleting.execute(
                "UPDATE syncd_documents SET deleted_at = 1 WHERE name = 'alice/doomed'"
            )
            later = asyncio.create_task(
                store.append({doomed: [NewUpdate(ups[1], "alice", "client")]})
            )
            await _wait_until_blocked(postgres_url, "UPDATE syncd_documents")
            await deleting.commit()
        got = await later
        assert isinstance(got[doomed], DocumentDeleted)
        await _trashed_then_purged(store, doomed)
    finally:
        await store.close()


@pytest.mark.postgres
async def test_delete_waiting_on_an_append_in_flight_deletes_what_it_wrote(postgres_url):
    """A delete that starts while an append holds the document's row: the delete waits for it,
    then its rows go to the trash too, and the purge erases them."""
    store = SqlStore(postgres_url)
    await store.open()
    try:
        doomed = DocKey("default", "alice/doomed")
        ups, _ = text_updates(2)
        await store.append({doomed: [NewUpdate(ups[0], "alice", "client")]})
        async with await psycopg.AsyncConnection.connect(postgres_url) as appending:
            # Another node's append, between its seq bump and its commit.
            cur = await appending.execute(
                "UPDATE syncd_documents SET seq = seq + 1 WHERE name = 'alice/doomed'"
                " RETURNING id, seq"
            )
            doc_id, seq = await cur.fetchone()  # type: ignore[misc]
            await appending.execute(
                "INSERT INTO syncd_updates (pos, doc_id, seq, principal, origin, at, data)"
                " VALUES (1000, %s, %s, 'alice', 'client', 0, %s)",
                (doc_id, seq, ups[1]),
            )
            deleting = asyncio.create_task(store.delete(doomed))
            await _wait_until_blocked(postgres_url, "UPDATE syncd_documents")
            await appending.commit()
        assert await deleting is True
        await _trashed_then_purged(store, doomed)
    finally:
        await store.close()


async def test_compaction_racing_delete_writes_no_snapshot(store: SqlStore):
    key = DocKey("default", "alice/compacted")
    ups, _ = text_updates(5)
    await store.append({key: [NewUpdate(u, "alice", "client") for u in ups]})
    load = store.load

    async def load_then_delete(k: DocKey):  # type: ignore[no-untyped-def]
        loaded = await load(k)
        assert await store.delete(k) is True  # lands between compaction's read and its write
        return loaded

    store.load = load_then_delete  # type: ignore[method-assign]
    try:
        await store.compact(key)
    finally:
        del store.load
    assert await _content_rows(store, key) == (5, 0)  # in the trash, not compacted


async def test_group_commit_refuses_a_deleted_document_to_its_submitters_only(store: Store):
    gone, kept = DocKey("default", "alice/gone"), DocKey("default", "bob/kept")
    await store.create(gone)
    assert await store.delete(gone) is True
    stored_counts: list[int] = []
    commit = GroupCommit(store, on_commit=lambda n, _s: stored_counts.append(n))
    commit.start()
    try:
        ups, _ = text_updates(2)
        # Submitted together, so they share one commit round (one transaction).
        refused, seqs = await asyncio.gather(
            commit.submit(gone, [NewUpdate(ups[0], "alice", "client")]),
            commit.submit(kept, [NewUpdate(ups[1], "bob", "client")]),
            return_exceptions=True,
        )
    finally:
        await commit.stop()
    assert isinstance(refused, DocumentDeleted) and refused.key == gone
    assert seqs == [1]
    assert stored_counts == [1]


# -- deadlines ------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _appenders_lock_held(store: SqlStore, database_url: str) -> AsyncIterator[None]:
    """Another client holds what every append takes first: SQLite's write lock, or on Postgres
    the feed-position row."""
    if store.dialect == "sqlite":
        db = sqlite3.connect(database_url.split(":///", 1)[1], isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            db.rollback()
            db.close()
    else:
        async with await psycopg.AsyncConnection.connect(database_url) as db:
            await db.execute("UPDATE syncd_feed_position SET pos = pos WHERE id = 1")
            yield
            await db.rollback()


async def test_an_append_that_cannot_get_its_lock_fails_within_the_deadline(database_url: str):
    timeout = 1.0
    store = SqlStore(database_url, timeout_seconds=timeout)
    await store.open()
    try:
        key = DocKey("default", "alice/locked")
        ups, _ = text_updates(2)
        await store.append({key: [NewUpdate(ups[0], "alice", "client")]})
        loop = asyncio.get_running_loop()
        async with _appenders_lock_held(store, database_url):
            started = loop.time()
            with pytest.raises(StoreUnavailable):
                async with asyncio.timeout(30):  # fail, rather than hang, without deadlines
                    await store.append({key: [NewUpdate(ups[1], "alice", "client")]})
            waited = loop.time() - started
        assert waited < timeout + 4.0, waited  # a generous margin for a busy machine
        # Nothing of the failed append is stored, and the store works again at once.
        assert (await store.append({key: [NewUpdate(ups[1], "alice", "client")]}))[key] == [2]
        assert (await store.load(key)).seq == 2
    finally:
        await store.close()
