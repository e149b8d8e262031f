"""Snapshots syncd checked are trusted on load, and nothing else is (storage/snapshot_mark.py)."""

from __future__ import annotations

import pycrdt
import pytest
from sqlalchemy import update

from crdt.replay import SNAPSHOT_SEQ, replay
from storage import DocKey, NewUpdate, SqlStore
from storage.schema import snapshots
from tests.support.crafted import deep_any

pytestmark = pytest.mark.anyio

KEY = b"test snapshot key"


def edits(count: int) -> list[bytes]:
    doc = pycrdt.Doc()
    text = doc.get("t", type=pycrdt.Text)
    out: list[bytes] = []
    sub = doc.observe(lambda event: out.append(event.update))
    for n in range(count):
        text.insert(0, f"w{n} ")
    doc.unobserve(sub)
    return out


async def compacted(store: SqlStore, name: str) -> DocKey:
    key = DocKey("default", name)
    await store.append({key: [NewUpdate(u, "alice", "client") for u in edits(20)]})
    await store.compact(key)
    return key


async def keyed_store(database_url: str, key: bytes) -> SqlStore:
    store = SqlStore(database_url, snapshot_key=key)
    await store.open()
    return store


async def set_snapshot(store: SqlStore, key: DocKey, **values: object) -> None:
    async with store._begin(tenants=[key.tenant]) as conn:
        doc = await store._doc_row(conn, key)
        await conn.execute(update(snapshots).where(snapshots.c.doc_id == doc.id).values(**values))


async def test_compaction_marks_and_only_the_same_key_trusts(database_url: str) -> None:
    store = await keyed_store(database_url, KEY)
    other = await keyed_store(database_url, b"another daemon's key")
    try:
        key = await compacted(store, "marked")
        loaded = await store.load(key)
        assert loaded is not None and loaded.snapshot and loaded.snapshot_checked
        foreign = await other.load(key)
        assert foreign is not None and not foreign.snapshot_checked
    finally:
        await store.close()
        await other.close()


async def test_forged_or_moved_marks_are_not_trusted(database_url: str) -> None:
    store = await keyed_store(database_url, KEY)
    try:
        a = await compacted(store, "a")
        b = await compacted(store, "b")
        # A mark made up by whoever can write the database.
        await set_snapshot(store, a, checked=b"\x00" * 32)
        assert not (await store.load(a)).snapshot_checked
        # b's genuine snapshot and mark copied into a: the mark names b's row.
        loaded_b = await store.load(b)
        async with store._begin(tenants=["default"]) as conn:
            mark_b = (
                (
                    await conn.execute(
                        snapshots.select().where(
                            snapshots.c.doc_id == (await store._doc_row(conn, b)).id
                        )
                    )
                )
                .one()
                .checked
            )
        await set_snapshot(store, a, state=loaded_b.snapshot, checked=mark_b,
                           upto_seq=loaded_b.snapshot_seq)  # fmt: skip
        assert not (await store.load(a)).snapshot_checked
    finally:
        await store.close()


async def test_a_marked_snapshot_changed_behind_syncd_is_checked_again(database_url: str) -> None:
    store = await keyed_store(database_url, KEY)
    try:
        key = await compacted(store, "poisoned")
        # The mark stays, the bytes become a stack-overflowing nest: the strict decoder must run.
        await set_snapshot(store, key, state=deep_any(client=77))
        loaded = await store.load(key)
        assert loaded is not None and not loaded.snapshot_checked
        result = replay(loaded.snapshot, loaded.numbered_tail(),
                        snapshot_checked=loaded.snapshot_checked)  # fmt: skip
        assert [seq for seq, _ in result.skipped] == [SNAPSHOT_SEQ]
    finally:
        await store.close()


async def test_a_trusted_snapshot_yrs_refuses_is_left_out_not_a_crash(database_url: str) -> None:
    store = await keyed_store(database_url, KEY)
    try:
        key = await compacted(store, "garbage")
        loaded = await store.load(key)
        garbage = b"\x01\x05\xff\xff\xff\xff\x0f\x00garbage"
        # Marked with syncd's own key: the mark spares the decoder, not the guarded apply.
        await store.mark_snapshot_checked(key, loaded.snapshot_seq, garbage)
        await set_snapshot(store, key, state=garbage)
        loaded = await store.load(key)
        assert loaded is not None and loaded.snapshot_checked
        result = replay(loaded.snapshot, loaded.numbered_tail(),
                        snapshot_checked=loaded.snapshot_checked)  # fmt: skip
        assert [seq for seq, _ in result.skipped] == [SNAPSHOT_SEQ]
    finally:
        await store.close()


async def test_an_unmarked_snapshot_is_marked_once_checked(database_url: str) -> None:
    store = await keyed_store(database_url, KEY)
    try:
        key = await compacted(store, "old")
        await set_snapshot(store, key, checked=None)  # as an older syncd left it
        loaded = await store.load(key)
        assert not loaded.snapshot_checked
        await store.mark_snapshot_checked(key, loaded.snapshot_seq, loaded.snapshot)
        again = await store.load(key)
        assert again.snapshot_checked and again.snapshot == loaded.snapshot
        doc = replay(again.snapshot, again.numbered_tail(), snapshot_checked=True).doc
        assert str(doc.get("t", type=pycrdt.Text)).startswith("w19 ")
    finally:
        await store.close()
