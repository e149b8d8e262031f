"""One contract, every backend: the same test bodies run on SQLite and Postgres."""

from __future__ import annotations

import asyncio

import pycrdt
import pytest

from storage import DocKey, GroupCommit, NewUpdate, SqlStore, Store
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
    assert gone.deleted and gone.grants == {}
    assert await store.load(key) is None
    assert await store.create(key) is False  # the tombstone keeps the id taken
    with pytest.raises(KeyError):
        await store.set_access(key, "private", {})
    with pytest.raises(KeyError):
        await store.set_access(DocKey("default", "alice/none"), "private", {})
