"""The change feed at the store level: order, cursors, prefixes, resets; SQLite and Postgres."""

from __future__ import annotations

import asyncio
import random

import psycopg
import pycrdt
import pytest

from storage import DocKey, NewUpdate, SqlStore
from tests.support.updates import text_updates

pytestmark = pytest.mark.anyio


async def drain(store: SqlStore, tenant: str, after: int = 0, **kw):  # type: ignore[no-untyped-def]
    events = []
    while True:
        page = await store.read_feed(tenant, after, **kw)
        events.extend(page.events)
        if page.next_pos == after and not page.events:
            return events, after
        after = page.next_pos


async def test_feed_orders_attributes_and_filters(store):
    a, b, other = DocKey("t", "alice/a"), DocKey("t", "bob/b"), DocKey("u", "alice/a")
    ups, _ = text_updates(4)
    await store.append({a: [NewUpdate(ups[0], "alice", "client")]})
    await store.append(
        {b: [NewUpdate(ups[0], "bob", "client")], a: [NewUpdate(ups[1], "svc", "service")]}
    )
    await store.append({other: [NewUpdate(ups[0], "alice", "client")]})
    events, _ = await drain(store, "t", limit=2)
    assert [(e.doc, e.seq, e.principal) for e in events] == [
        ("alice/a", 1, "alice"),
        ("alice/a", 2, "svc"),
        ("bob/b", 1, "bob"),
    ] or [(e.doc, e.seq, e.principal) for e in events] == [
        ("alice/a", 1, "alice"),
        ("bob/b", 1, "bob"),
        ("alice/a", 2, "svc"),
    ]
    assert [e.pos for e in events] == sorted(e.pos for e in events)
    assert all(e.type == "update" for e in events)
    only_alice, _ = await drain(store, "t", prefix="alice/")
    assert {e.doc for e in only_alice} == {"alice/a"}
    # A prefix with LIKE wildcards is matched literally.
    assert (await drain(store, "t", prefix="a_ice/"))[0] == []
    assert [e.doc for e in (await drain(store, "u"))[0]] == ["alice/a"]


async def test_empty_page_still_advances_next(store):
    page = await store.read_feed("t", 0)
    assert page.events == [] and page.next_pos == 0
    ups, _ = text_updates(1)
    await store.append({DocKey("elsewhere", "x/y"): [NewUpdate(ups[0], "x", "client")]})
    page = await store.read_feed("t", 0)
    assert page.events == [] and page.next_pos >= 1  # nothing for us up to there


async def test_reset_after_pruned_history(database_url):
    store = SqlStore(database_url, retention_seconds=0)
    await store.open()
    try:
        key = DocKey("t", "alice/c")
        ups, text = text_updates(30)
        for u in ups[:20]:
            await store.append({key: [NewUpdate(u, "alice", "client")]})
        old_cursor = 0
        await store.compact(key)  # folds and, with zero retention, prunes the first 20
        for u in ups[20:]:
            await store.append({key: [NewUpdate(u, "alice", "client")]})
        events, _ = await drain(store, "t", after=old_cursor, limit=7)
        assert events[0].type == "reset" and events[0].seq == 20
        assert [e.seq for e in events[1:]] == list(range(21, 31))
        doc = pycrdt.Doc()
        doc.apply_update(events[0].data)
        for e in events[1:]:
            doc.apply_update(e.data)
        assert str(doc.get("t", type=pycrdt.Text)) == text
        # A subscriber already past the pruned part gets no reset.
        events2, _ = await drain(store, "t", after=events[0].pos)
        assert all(e.type == "update" for e in events2) and len(events2) == 10
    finally:
        await store.close()


async def test_concurrent_writers_resuming_reader_sees_each_update_once(database_url):
    # Two stores on one database: two daemon nodes appending at once.
    nodes = [SqlStore(database_url), SqlStore(database_url)]
    for n in nodes:
        await n.open()
    try:
        docs = [DocKey("t", f"owner{i}/doc") for i in range(20)]
        per_writer = 15
        sources = {w: text_updates(per_writer, client_id=500 + w)[0] for w in range(8)}
        rnd = random.Random(7)

        async def writer(w: int) -> None:
            for i, u in enumerate(sources[w]):
                key = docs[(w * 7 + i) % len(docs)]
                await nodes[w % 2].append({key: [NewUpdate(u, f"w{w}", "client")]})

        seen: list = []
        cursor = 0
        done = asyncio.Event()

        async def reader() -> None:
            nonlocal cursor
            while True:
                finished = done.is_set()
                page = await nodes[0].read_feed("t", cursor, limit=rnd.randint(1, 9))
                seen.extend(page.events)
                cursor = page.next_pos  # "resume" from the last cursor, page after page
                if finished and not page.events:
                    return
                await asyncio.sleep(0)

        read = asyncio.create_task(reader())
        await asyncio.gather(*(writer(w) for w in range(8)))
        done.set()
        await read
        keys = [(e.doc, e.seq) for e in seen]
        assert len(keys) == len(set(keys)) == 8 * per_writer  # every update exactly once
        for d in docs:  # per document in seq order
            seqs = [e.seq for e in seen if e.doc == d.name]
            assert seqs == sorted(seqs) == list(range(1, len(seqs) + 1))
        assert [e.pos for e in seen] == sorted(e.pos for e in seen)
    finally:
        for n in nodes:
            await n.close()


@pytest.mark.postgres
async def test_position_allocation_waits_for_earlier_commit(postgres_url):
    """On Postgres a sequence value taken first can commit last. Feed positions cannot: the
    row that allocates them stays locked until the allocating transaction commits."""
    store = SqlStore(postgres_url)
    await store.open()
    try:
        ups, _ = text_updates(2)
        key = DocKey("t", "alice/race")
        await store.append({key: [NewUpdate(ups[0], "alice", "client")]})
        async with await psycopg.AsyncConnection.connect(postgres_url) as slow:
            # Another node's transaction allocates position 2 and has not committed yet.
            await slow.execute("UPDATE syncd_feed_position SET pos = pos + 1 WHERE id = 1")
            later = asyncio.create_task(store.append({key: [NewUpdate(ups[1], "alice", "client")]}))
            # Positive evidence that it waits: its backend shows up blocked on that row lock.
            watcher = await psycopg.AsyncConnection.connect(postgres_url, autocommit=True)
            async with watcher, asyncio.timeout(10):
                while True:
                    cur = await watcher.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND query LIKE 'UPDATE syncd_feed_position%'"
                    )
                    if (await cur.fetchone())[0] >= 1:
                        break
                    await asyncio.sleep(0.01)  # polling another process's state
            assert not later.done()
            page = await store.read_feed("t", 1)
            assert page.events == [] and page.next_pos == 1  # position 2 is not visible yet
            await slow.rollback()
        await later
        page = await store.read_feed("t", 1)
        assert [e.seq for e in page.events] == [2]
    finally:
        await store.close()


async def test_prefix_matches_literally_and_case_sensitively(store):
    ups, _ = text_updates(1)
    names = ["alice/x", "Alice/x", "ALICE/x", "alice%/x", "alicex/y"]
    await store.append({DocKey("t", n): [NewUpdate(ups[0], "w", "client")] for n in names})

    async def docs(prefix: str) -> set[str]:
        return {e.doc for e in (await drain(store, "t", prefix=prefix))[0]}

    # SQLite's LIKE ignores ASCII case: "alice/" matched "Alice/x" there.
    assert await docs("alice/") == {"alice/x"}
    assert await docs("Alice/") == {"Alice/x"}
    assert await docs("alice") == {"alice/x", "alice%/x", "alicex/y"}
    assert await docs("alice%") == {"alice%/x"}
    assert await docs("alice/X") == set()


async def test_nothing_of_a_deleted_document_is_served(database_url):
    from sqlalchemy import select, update

    from storage.schema import documents, feed_position, snapshots, updates

    store = SqlStore(database_url, retention_seconds=0)
    await store.open()
    try:
        gone, kept = DocKey("t", "alice/gone"), DocKey("t", "bob/kept")
        ups, _ = text_updates(3)
        await store.append({gone: [NewUpdate(u, "alice", "client") for u in ups]})
        await store.append({kept: [NewUpdate(ups[0], "bob", "client")]})
        assert await store.delete(gone) is True
        # What an append racing the delete left behind before syncd refused it (issue 8: a
        # write stored after the tombstone, seq 11, served by the feed), with a snapshot whose
        # pruned history would call for a reset.
        async with store._begin() as conn:
            doc_id = (
                await conn.execute(select(documents.c.id).where(documents.c.name == gone.name))
            ).scalar_one()
            await conn.execute(
                updates.insert().values(
                    pos=100, doc_id=doc_id, seq=11, principal="alice", origin="client",
                    at=0.0, data=ups[0],
                )
            )
            await conn.execute(
                snapshots.insert().values(
                    doc_id=doc_id, upto_seq=3, upto_pos=3, state=ups[0], at=0.0
                )
            )
            await conn.execute(
                update(documents).where(documents.c.id == doc_id).values(pruned_pos=3)
            )
            await conn.execute(update(feed_position).values(pos=100))
        events, _ = await drain(store, "t")
        assert [(e.type, e.doc) for e in events] == [("update", "bob/kept")]
    finally:
        await store.close()
