"""The trash and the purge (issue 11, acceptance 4), on SQLite and Postgres: a deleted document
comes back whole; a purged one leaves nothing of its content in any table, its id answers 4404,
and only an explicit re-creation (new epoch) makes it a document again; the trash window ends by
a sweep that runs; a compaction finishing late resurrects nothing."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx
import pycrdt
import pytest
import sqlalchemy as sa

from storage import DocKey, NewUpdate, SqlStore
from storage.history import NAMED, SqlHistory
from storage.schema import metadata
from storage.trash import SqlTrash
from tests.support.history import CanvasWriter, json_state
from tests.support.servers import RunningDaemon, start_daemon
from tests.support.yclient import YClient

pytestmark = pytest.mark.anyio

PLANTED = "PLANTED-7c1e9d"


async def _refused_4404(daemon: RunningDaemon, doc: str, who: str = "alice") -> None:
    client = YClient(daemon.ws_url(doc, daemon.token(who)))
    await client.connect(wait_synced=False)
    await client.wait(client.closed)
    assert client.close_code == 4404
    await client.close()


async def _rows_mentioning(store: SqlStore, needle: bytes) -> list[str]:
    """Every row of every syncd table whose values contain ``needle`` (as ``table: row``)."""
    found: list[str] = []
    async with store._begin(write=False) as conn:
        for table in metadata.sorted_tables:
            for row in (await conn.execute(sa.select(table))).all():
                for value in row:
                    raw = value if isinstance(value, bytes | memoryview) else str(value).encode()
                    if needle in bytes(raw):
                        found.append(f"{table.name}: {row}")
    return found


async def test_delete_then_restore_gives_the_whole_document_back(any_daemon: RunningDaemon):
    async with httpx.AsyncClient(base_url=any_daemon.http) as http:
        alice = CanvasWriter(http, any_daemon, "alice/trashed", "alice")
        await alice.edit(lambda c: c.init("Trashed"))
        await alice.edit(lambda c: c.add_text("kept through the trash", 1, 2))
        await http.put(
            "/v1/docs/alice/trashed/access",
            json={"mode": "shared", "grants": {"bob": "editor"}},
            headers=alice.auth,
        )
        version = (
            await http.post(
                "/v1/docs/alice/trashed/versions", json={"name": "v"}, headers=alice.auth
            )
        ).json()
        before = await json_state(http, "/v1/docs/alice/trashed/state", alice.auth)
        meta_before = (await http.get("/v1/docs/alice/trashed", headers=alice.auth)).json()
        url = any_daemon.ws_url("alice/trashed", any_daemon.token("alice"))
        async with YClient(url) as live:
            assert (
                await http.delete("/v1/docs/alice/trashed", headers=alice.auth)
            ).status_code == 204
            await live.wait(live.closed)
            assert live.close_code == 4404
        assert (await http.get("/v1/docs/alice/trashed", headers=alice.auth)).status_code == 404
        await _refused_4404(any_daemon, "alice/trashed")
        trash = (await http.get("/v1/trash", headers=alice.auth)).json()["trash"]
        assert [t["id"] for t in trash] == ["alice/trashed"] and trash[0]["purge_at"]
        bob = {"authorization": f"Bearer {any_daemon.token('bob')}"}
        assert (await http.get("/v1/trash", headers=bob)).json() == {"trash": []}
        # Only the owner (or an admin) restores it; then it is all there.
        assert (await http.post("/v1/docs/alice/trashed/restore", headers=bob)).status_code == 403
        r = await http.post("/v1/docs/alice/trashed/restore", headers=alice.auth)
        assert r.status_code == 200, r.text
        restored = r.json()
        assert restored["grants"] == {"bob": "editor"} and restored["mode"] == "shared"
        assert restored["epoch"] == meta_before["epoch"] and restored["seq"] == meta_before["seq"]
        assert await json_state(http, "/v1/docs/alice/trashed/state", alice.auth) == before
        assert await json_state(http, "/v1/docs/alice/trashed/state", bob) == before
        path = f"/v1/docs/alice/trashed/versions/{version['id']}/state"
        assert await json_state(http, path, alice.auth) == before
        async with YClient(url) as back:  # the live endpoint serves it again
            elements = back.doc.get("elements", type=pycrdt.Map)
            texts = [str(e["text"]) for e in elements.values() if e.get("kind") == "text"]
            assert texts == ["kept through the trash"]
        assert (
            await http.post("/v1/docs/alice/trashed/restore", headers=alice.auth)
        ).status_code == 404
        assert (await http.get("/v1/trash", headers=alice.auth)).json() == {"trash": []}


async def test_purge_erases_everything_and_the_id_stays_refused(any_daemon: RunningDaemon):
    store = any_daemon.daemon.store
    assert isinstance(store, SqlStore)
    async with httpx.AsyncClient(base_url=any_daemon.http) as http:
        alice = CanvasWriter(http, any_daemon, "alice/secret", "alice")
        await alice.edit(lambda c: c.init(PLANTED))
        text, _ = await alice.edit(lambda c: c.add_text(f"a {PLANTED} here", 1, 2))
        await http.post(
            "/v1/docs/alice/secret/versions", json={"name": PLANTED}, headers=alice.auth
        )
        for n in range(30):
            await alice.edit(lambda c, n=n: c.edit_text(text, 0, insert=f"{n}"))
        await store.compact(DocKey("default", "alice/secret"))  # a snapshot and a version state
        assert await _rows_mentioning(store, PLANTED.encode())  # the probe finds it while there
        epoch = (await http.get("/v1/docs/alice/secret", headers=alice.auth)).json()["epoch"]
        bob = {"authorization": f"Bearer {any_daemon.token('bob')}"}
        purge = "/v1/docs/alice/secret?purge=true"
        assert (await http.delete(purge, headers=bob)).status_code == 404
        url = any_daemon.ws_url("alice/secret", any_daemon.token("alice"))
        async with YClient(url) as live:
            assert (await http.delete(purge, headers=alice.auth)).status_code == 204
            await live.wait(live.closed)
            assert live.close_code == 4404
        assert await _rows_mentioning(store, PLANTED.encode()) == []
        # Nothing readable through any API, and the id is refused.
        for path in ("", "/state", "/versions", "/activity"):
            r = await http.get(f"/v1/docs/alice/secret{path}", headers=alice.auth)
            assert r.status_code == 404, path
        assert (
            await http.post("/v1/docs/alice/secret/restore", headers=alice.auth)
        ).status_code == 404
        assert (await http.get("/v1/trash", headers=alice.auth)).json() == {"trash": []}
        await _refused_4404(any_daemon, "alice/secret")
        post = await http.post(
            "/v1/docs/alice/secret/updates", content=pycrdt.Doc().get_update(), headers=alice.auth
        )
        assert post.status_code == 404
        assert (await http.delete(purge, headers=alice.auth)).status_code == 404
        # Re-created explicitly: empty, a new epoch, served again.
        r = await http.put("/v1/docs/alice/secret", headers=alice.auth)
        assert r.status_code == 201, r.text
        assert r.json()["epoch"] != epoch and r.json()["seq"] == 0
        assert (await http.put("/v1/docs/alice/secret", headers=alice.auth)).status_code == 409
        fresh = CanvasWriter(http, any_daemon, "alice/secret", "alice")
        await fresh.edit(lambda c: c.init("new lineage"))
        assert (await json_state(http, "/v1/docs/alice/secret/state", alice.auth))["meta"][
            "title"
        ] == "new lineage"
        assert (await http.get("/v1/docs/alice/secret/versions", headers=alice.auth)).json() == {
            "versions": []
        }
        assert await _rows_mentioning(store, PLANTED.encode()) == []


async def test_a_document_in_the_trash_is_purged_by_the_sweep_when_its_window_ends(
    settings, database_url
):
    running = await start_daemon(replace(settings, database_url=database_url, trash_seconds=0.4))
    try:
        store = running.daemon.store
        assert isinstance(store, SqlStore)
        async with httpx.AsyncClient(base_url=running.http) as http:
            alice = CanvasWriter(http, running, "alice/expiring", "alice")
            await alice.edit(lambda c: c.init(PLANTED))
            assert (
                await http.delete("/v1/docs/alice/expiring", headers=alice.auth)
            ).status_code == 204
            key = DocKey("default", "alice/expiring")
            sweep = running.daemon.history_sweep
            async with asyncio.timeout(15):
                while not (await store.meta(key)).purged:  # type: ignore[union-attr]
                    await sweep.wait_passes(1)
            assert await _rows_mentioning(store, PLANTED.encode()) == []
            assert (
                await http.post("/v1/docs/alice/expiring/restore", headers=alice.auth)
            ).status_code == 404
            await _refused_4404(running, "alice/expiring")
    finally:
        await running.stop()


async def test_a_compaction_finishing_after_a_purge_and_re_creation_writes_nothing(
    store: SqlStore,
):
    key = DocKey("default", "alice/raced")
    old = pycrdt.Doc()
    old.get("t", type=pycrdt.Text).insert(0, PLANTED)
    await store.append({key: [NewUpdate(old.get_update(), "alice", "client")]})
    await SqlHistory(store).create_version(key, "v", NAMED, "alice")
    trash = SqlTrash(store)
    load = store.load

    async def load_then_purge_and_recreate(k: DocKey):  # type: ignore[no-untyped-def]
        loaded = await load(k)
        assert await store.delete(k) and await trash.purge(k)
        assert await trash.recreate(k) is not None  # live again, another lineage
        return loaded

    store.load = load_then_purge_and_recreate  # type: ignore[method-assign]
    try:
        await store.compact(key)
    finally:
        del store.load
    assert await _rows_mentioning(store, PLANTED.encode()) == []
    loaded = await store.load(key)
    assert loaded is not None and loaded.snapshot is None and loaded.tail == []
