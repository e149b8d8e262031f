"""A cold load answers new clients from the served state, and builds the replica behind it
(storage/served_state.py, Room.restore_later)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import pycrdt
import pytest
from sqlalchemy import select

from crdt.protocol import SyncStep, encode_sync
from storage import DocKey, GroupCommit, NewUpdate, SqlStore
from storage.key_ring import KeyRing
from storage.rekeying import rotate_tenant
from storage.schema import served_states
from storage.served_state import MIN_SERVED_BYTES, ServedState
from storage.trash import SqlTrash
from syncd.metrics import Metrics
from syncd.origin import Origin
from syncd.room import Room
from syncd.rooms import Rooms
from syncd.settings import Settings
from tests.support.cluster import running_cluster
from tests.support.redis_server import (  # noqa: F401 - fixtures
    redis_server_fixture,
    redis_url_fixture,
)
from tests.support.servers import DaemonProcess
from tests.support.yclient import YClient

pytestmark = pytest.mark.anyio

KEY = DocKey("acme", "alice/journal")
MARKER = "served-state-marker"


def big_updates(doc: pycrdt.Doc, lines: int = 400) -> list[bytes]:
    """Updates of ``doc`` that make a state past MIN_SERVED_BYTES (a long journal)."""
    out: list[bytes] = []
    sub = doc.observe(lambda event: out.append(event.update))
    text = doc.get("t", type=pycrdt.Text)
    for n in range(lines):
        text += f"{MARKER} line {n} " + "x" * 200 + "\n"
    doc.unobserve(sub)
    assert len(doc.get_update()) > MIN_SERVED_BYTES
    return out


def content(update: bytes) -> str:
    doc = pycrdt.Doc()
    doc.apply_update(update)
    return str(doc.get("t", type=pycrdt.Text))


async def stored(store: SqlStore, name: str, updates: list[bytes]) -> DocKey:
    key = DocKey(KEY.tenant, name)
    await store.append({key: [NewUpdate(u, "alice", "client") for u in updates]})
    return key


async def served_rows(store: SqlStore) -> list[bytes]:
    async with store._begin(tenants=[KEY.tenant], write=False) as conn:
        return [bytes(r.state) for r in await conn.execute(select(served_states.c.state))]


async def test_only_a_current_served_state_is_loaded(store: SqlStore) -> None:
    doc = pycrdt.Doc()
    key = await stored(store, "alice/current", big_updates(doc))
    loaded = await store.load(key)
    assert loaded is not None and loaded.served is None
    served = ServedState(loaded.seq, doc.get_state(), doc.get_update())
    assert not await store.save_served_state(key, "another lineage", served)
    stale = ServedState(loaded.seq - 1, doc.get_state(), doc.get_update())
    assert not await store.save_served_state(key, loaded.epoch, stale)
    assert await store.save_served_state(key, loaded.epoch, served)
    assert (await store.load(key)).served == served
    # A newer update makes it stale: the load no longer offers it.
    doc.get("t", type=pycrdt.Text).insert(0, "new ")
    await store.append({key: [NewUpdate(doc.get_update(pycrdt.Doc().get_state()), "a", "client")]})
    assert (await store.load(key)).served is None


async def test_purge_and_erasure_delete_it(store: SqlStore) -> None:
    doc = pycrdt.Doc()
    key = await stored(store, "alice/purged", big_updates(doc))
    loaded = await store.load(key)
    served = ServedState(loaded.seq, doc.get_state(), doc.get_update())
    assert await store.save_served_state(key, loaded.epoch, served)
    assert len(await served_rows(store)) == 1
    assert await store.delete(key)
    assert await SqlTrash(store).purge(key)
    assert await served_rows(store) == []


async def test_sealed_at_rest_and_resealed_by_rotation(database_url: str) -> None:
    store = SqlStore(database_url, key_ring=KeyRing(os.urandom(32)))
    await store.open()
    try:
        doc = pycrdt.Doc()
        key = await stored(store, "alice/sealed", big_updates(doc))
        loaded = await store.load(key)
        served = ServedState(loaded.seq, doc.get_state(), doc.get_update())
        assert await store.save_served_state(key, loaded.epoch, served)
        [raw] = await served_rows(store)
        assert MARKER.encode() not in raw
        await rotate_tenant(store, KEY.tenant, settle_seconds=0)
        [resealed] = await served_rows(store)
        assert resealed != raw and MARKER.encode() not in resealed
        assert (await store.load(key)).served == served
    finally:
        await store.close()


async def rooms_on(store: SqlStore, tmp_path: Path) -> Rooms:
    settings = Settings(data_dir=tmp_path)
    commit = GroupCommit(store)
    commit.start()
    return Rooms(store, commit, settings, Metrics())


async def closed(rooms: Rooms) -> None:
    await rooms.close()
    await rooms.commit.stop()


async def unload(rooms: Rooms, key: DocKey) -> None:
    """Release the room's last holder and wait until it unloaded and kept its served state."""
    room = await rooms.acquire(key, create=False)
    rooms._unload_if_idle(room)  # what the idle timer calls
    assert rooms.get_loaded(key) is None
    await asyncio.wait_for(asyncio.gather(*rooms._background), 10)
    await closed(rooms)


async def cold_room(store: SqlStore, tmp_path: Path, name: str) -> tuple[pycrdt.Doc, Rooms, Room]:
    """A document written by the returned replica, unloaded once, then loaded cold again by a
    fresh Rooms (the served state kept by the unload is current)."""
    writer = pycrdt.Doc()
    key = await stored(store, name, big_updates(writer))
    await unload(await rooms_on(store, tmp_path), key)
    cold = await rooms_on(store, tmp_path)
    room = await cold.acquire(key, create=False)
    assert not room.built
    return writer, cold, room


async def test_a_cold_room_answers_from_it_and_builds_behind(
    store: SqlStore, tmp_path: Path
) -> None:
    writer, cold, room = await cold_room(store, tmp_path, "alice/cold")
    saved = (await store.load(room.key)).served
    assert saved is not None and content(saved.update) == str(writer.get("t", type=pycrdt.Text))
    answer = await room.sync_step2_for(b"\x00")
    assert answer == encode_sync(SyncStep.STEP2, saved.update)
    assert not room.built  # the answer did not wait for the replica
    await room.readable()  # the first reader builds it
    assert room.built
    assert content(room.full_update()) == content(saved.update)
    await closed(cold)


async def test_a_write_to_a_cold_room_lands_on_the_built_replica(
    store: SqlStore, tmp_path: Path
) -> None:
    writer, cold, room = await cold_room(store, tmp_path, "alice/written")
    before = writer.get_state()
    writer.get("t", type=pycrdt.Text).insert(0, "written while cold\n")
    origin = Origin.http("alice", privileged=False)
    done = await room.ingest(origin, writer.get_update(before), ack=True)
    assert done is not None and await done == room.seq
    await room.readable()
    assert content(room.full_update()) == str(writer.get("t", type=pycrdt.Text))
    # The stored served state is stale now: the next cold load takes the usual path.
    assert (await store.load(room.key)).served is None
    await closed(cold)


async def test_a_restart_serves_the_document_whole(tmp_path: Path, database_url: str) -> None:
    """Over the wire: a graceful stop keeps the served state; after the restart a new client
    gets the document whole at once and a write from it reaches another new client."""
    from tests.test_durability import _mint

    proc = DaemonProcess(tmp_path / "data", database_url).start()
    url = proc.ws_url("alice/restarted", _mint("alice"))
    try:
        async with YClient(url) as a:
            text = a.doc.get("t", type=pycrdt.Text)
            for n in range(400):
                text += f"{MARKER} line {n} " + "x" * 200 + "\n"
            want = str(text)
            async with YClient(url) as check:
                await check.wait_until(lambda: str(check.doc.get("t", type=pycrdt.Text)) == want)
        assert proc.terminate() in (0, -15)
        store = SqlStore(database_url)
        await store.open()
        try:
            key = DocKey("default", "alice/restarted")
            assert (await store.load(key)).served is not None
        finally:
            await store.close()
        proc.start()
        async with YClient(url) as fresh, YClient(url) as other:
            assert str(fresh.doc.get("t", type=pycrdt.Text)) == want
            fresh.doc.get("t", type=pycrdt.Text).insert(0, "after the restart\n")
            await other.wait_until(
                lambda: str(other.doc.get("t", type=pycrdt.Text)) == "after the restart\n" + want
            )
    finally:
        with contextlib.suppress(Exception):
            proc.terminate()


async def test_erasure_deletes_the_served_state_of_a_rewritten_document(any_daemon) -> None:
    """The served state holds the document's content: erasure's rewrite must not leave it."""
    import httpx

    from crdt.replay import replay
    from tests.test_erasure import BOB, EMAIL, auth, found_in_database, post_journal

    daemon = any_daemon
    store = daemon.daemon.store
    key = DocKey("default", "alice/notes")
    async with httpx.AsyncClient(base_url=daemon.http) as http:
        await post_journal(http, daemon, "alice/notes", "alice", f"write to {EMAIL} soon")
        loaded = await store.load(key)
        doc = replay(loaded.snapshot, loaded.numbered_tail()).doc
        served = ServedState(loaded.seq, doc.get_state(), doc.get_update())
        assert await store.save_served_state(key, loaded.epoch, served)
        r = await http.request(
            "DELETE",
            f"/v1/principals/{BOB}",
            content=f'{{"identifiers": ["{EMAIL}"]}}'.encode(),
            headers=auth(daemon, "root", role="admin"),
        )
        assert r.status_code == 200, r.text
        assert r.json()["documents_rewritten"] == ["alice/notes"]
    assert await served_rows(store) == []
    assert await found_in_database(daemon.settings.database_url, (EMAIL,)) == []


@pytest.mark.postgres
async def test_a_write_on_another_node_reaches_a_client_answered_from_it(
    settings: Settings, postgres_url: str, redis_url: str
) -> None:
    """Node A answers a cold client from the served state while node B writes: B's update
    reaches that client (applied once A's replica is built, and fanned out)."""
    doc = "alice/two-nodes"
    key = DocKey("default", doc)
    async with running_cluster(settings, postgres_url, redis_url, 2) as nodes:
        a = nodes[0]
        async with YClient(nodes.ws_url(0, doc, "alice")) as writer:
            text = writer.doc.get("t", type=pycrdt.Text)
            for n in range(400):
                text += f"{MARKER} line {n} " + "x" * 200 + "\n"
            want = str(text)
            async with YClient(nodes.ws_url(0, doc, "alice")) as check:
                await check.wait_until(lambda: str(check.doc.get("t", type=pycrdt.Text)) == want)
        room = await a.daemon.rooms.acquire(key, create=False)
        a.daemon.rooms._unload_if_idle(room)  # what the idle timer calls
        await asyncio.wait_for(asyncio.gather(*a.daemon.rooms._background), 10)
        assert (await a.daemon.store.load(key)).served is not None
        async with YClient(nodes.ws_url(0, doc, "alice")) as cold:
            assert str(cold.doc.get("t", type=pycrdt.Text)) == want
            async with YClient(nodes.ws_url(1, doc, "alice")) as on_b:
                on_b.doc.get("t", type=pycrdt.Text).insert(0, "from node b\n")
                await cold.wait_until(
                    lambda: str(cold.doc.get("t", type=pycrdt.Text)) == "from node b\n" + want
                )


async def test_a_replica_ahead_of_the_store_keeps_nothing(store: SqlStore) -> None:
    """While a batch is applied but not committed (or a commit failed and the replica waits
    to be reloaded), the replica holds what the store does not: it must not be kept."""
    writer = pycrdt.Doc()
    key = await stored(store, "alice/ahead", big_updates(writer))
    room = Room(key, GroupCommit(store))
    room.restore(await store.load(key))
    assert room.served_state() is not None
    room._committed.clear()  # what _flush does while a batch is in flight
    assert room.served_state() is None
    room._committed.set()
    room._stale = True  # what a failed commit leaves until the reload
    assert room.served_state() is None
