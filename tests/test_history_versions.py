"""Versions and restore (issue 11, acceptance 1 and 2), on SQLite and Postgres: named and
automatic versions, their states, compaction under a short retention, restore as a forward edit
that live clients receive and that merges with a concurrent edit."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace

import httpx
import pycrdt
import pytest
from sqlalchemy import func, select

import syncd.history
from crdt.schemas import Canvas
from storage import DocKey, NewUpdate, SqlStore
from storage.history import AUTO, NAMED, HistoryGone, SqlHistory
from storage.schema import updates
from tests.support.history import CanvasWriter, json_state
from tests.support.servers import RunningDaemon, start_daemon
from tests.support.updates import text_updates
from tests.support.yclient import YClient

pytestmark = pytest.mark.anyio


async def test_a_named_version_keeps_the_content_it_was_made_at(any_daemon: RunningDaemon):
    async with httpx.AsyncClient(base_url=any_daemon.http) as http:
        alice = CanvasWriter(http, any_daemon, "alice/board", "alice")
        await alice.edit(lambda c: c.init("Board"))
        card, _ = await alice.edit(lambda c: c.add_card("tarot", "the-fool", 10, 20))
        at_version = alice.canvas.to_json()
        r = await http.post(
            "/v1/docs/alice/board/versions",
            json={"name": "before the workshop"},
            headers=alice.auth,
        )
        assert r.status_code == 201, r.text
        version = r.json()
        assert version["name"] == "before the workshop" and version["kind"] == "named"
        assert version["seq"] == 2 and version["created_by"] == "alice"
        await alice.edit(lambda c: c.move(card, 300, 300))
        await alice.edit(lambda c: c.add_card("tarot", "the-tower", 0, 0))
        path = f"/v1/docs/alice/board/versions/{version['id']}/state"
        assert await json_state(http, path, alice.auth) == at_version
        binary = await http.get(path, headers=alice.auth)
        assert binary.headers["content-type"] == "application/octet-stream"
        rebuilt = Canvas(pycrdt.Doc())
        rebuilt.doc.apply_update(binary.content)
        assert rebuilt.to_json() == at_version
        listed = (await http.get("/v1/docs/alice/board/versions", headers=alice.auth)).json()
        assert listed == {"versions": [version]}
        # Viewers read versions but do not make them; strangers do not see them at all.
        bob = {"authorization": f"Bearer {any_daemon.token('bob')}"}
        assert (await http.get("/v1/docs/alice/board/versions", headers=bob)).status_code == 404
        await http.put(
            "/v1/docs/alice/board/access",
            json={"mode": "shared", "grants": {"bob": "viewer"}},
            headers=alice.auth,
        )
        assert (await http.get(path, headers=bob)).status_code == 200
        made = await http.post("/v1/docs/alice/board/versions", json={"name": "x"}, headers=bob)
        assert made.status_code == 403
        bad = await http.post(
            "/v1/docs/alice/board/versions", json={"name": ""}, headers=alice.auth
        )
        assert bad.status_code == 400
        gone = await http.get("/v1/docs/alice/board/versions/999999/state", headers=alice.auth)
        assert gone.status_code == 404
        deleted = await http.delete(
            f"/v1/docs/alice/board/versions/{version['id']}", headers=alice.auth
        )
        assert deleted.status_code == 204
        assert (await http.get(path, headers=alice.auth)).status_code == 404


async def test_restore_reaches_live_clients_and_keeps_a_concurrent_edit(
    any_daemon: RunningDaemon, monkeypatch: pytest.MonkeyPatch
):
    async with httpx.AsyncClient(base_url=any_daemon.http) as http:
        alice = CanvasWriter(http, any_daemon, "alice/restored", "alice")
        await alice.edit(lambda c: c.init("Restored"))
        card, _ = await alice.edit(lambda c: c.add_card("tarot", "the-star", 1, 2))
        wanted = alice.canvas.to_json()
        version = (
            await http.post(
                "/v1/docs/alice/restored/versions", json={"name": "v1"}, headers=alice.auth
            )
        ).json()
        await alice.edit(lambda c: c.move(card, 500, 500))
        await alice.edit(lambda c: c.rename("scribbled over"))
        stroke, _ = await alice.edit(lambda c: c.add_stroke(5, 5, [1, 1, 0.5]))

        # While the restore is being computed (against the state before it), another edit is
        # committed: the restore must not undo it.
        computing, go_on = asyncio.Event(), threading.Event()
        loop = asyncio.get_running_loop()
        real = syncd.history.restore_edit

        def slow_restore(current: bytes, target: bytes) -> bytes | None:
            loop.call_soon_threadsafe(computing.set)
            assert go_on.wait(20)
            return real(current, target)

        monkeypatch.setattr(syncd.history, "restore_edit", slow_restore)
        url = any_daemon.ws_url("alice/restored", any_daemon.token("alice"))
        async with YClient(url) as live:
            restoring = asyncio.create_task(
                http.post(
                    f"/v1/docs/alice/restored/versions/{version['id']}/restore",
                    headers=alice.auth,
                )
            )
            await asyncio.wait_for(computing.wait(), 20)
            concurrent, _ = await alice.edit(lambda c: c.add_card("tarot", "the-moon", 7, 7))
            go_on.set()
            r = await restoring
            assert r.status_code == 200, r.text
            seq = r.json()["seq"]
            expected = {
                "meta": wanted["meta"],
                "elements": {
                    **wanted["elements"],
                    concurrent: alice.canvas.to_json()["elements"][concurrent],
                },
            }
            # The live client receives the forward edit like any update.
            await live.wait_until(lambda: Canvas(live.doc).to_json() == expected, 5)
        assert stroke not in expected["elements"]
        assert await json_state(http, "/v1/docs/alice/restored/state", alice.auth) == expected
        meta = (await http.get("/v1/docs/alice/restored", headers=alice.auth)).json()
        assert meta["seq"] == seq
        # Attributed to the caller, origin "restore"; restoring again changes nothing.
        trail = await json_state(http, "/v1/docs/alice/restored/activity", alice.auth)
        last = trail["activity"][-1]
        assert (last["seq"], last["principal"], last["origin"]) == (seq, "alice", "restore")
        # Restoring again makes the content the version's (the concurrent card goes now, an
        # edit like any other); once more changes nothing: the same content, no new update.
        path = f"/v1/docs/alice/restored/versions/{version['id']}/restore"
        again = (await http.post(path, headers=alice.auth)).json()["seq"]
        assert await json_state(http, "/v1/docs/alice/restored/state", alice.auth) == wanted
        assert (await http.post(path, headers=alice.auth)).json() == {"seq": again}
        assert await json_state(http, "/v1/docs/alice/restored/state", alice.auth) == wanted


async def _rows(store: SqlStore, key: DocKey) -> int:
    async with store._begin(write=False) as conn:
        doc = await store._doc_row(conn, key)
        return (
            await conn.execute(select(func.count()).where(updates.c.doc_id == doc.id))
        ).scalar_one()


def _text_at(ups: list[bytes], seq: int) -> str:
    doc = pycrdt.Doc()
    for u in ups[:seq]:
        doc.apply_update(u)
    return str(doc.get("t", type=pycrdt.Text))


def _text_of(state: bytes) -> str:
    doc = pycrdt.Doc()
    doc.apply_update(state)
    return str(doc.get("t", type=pycrdt.Text))


async def test_compaction_with_no_retention_keeps_every_version_rebuildable(database_url: str):
    store = SqlStore(database_url, retention_seconds=0.0)  # every folded row is pruned at once
    await store.open()
    history = SqlHistory(store)
    key = DocKey("default", "alice/compacted")
    ups, _ = text_updates(40)
    try:
        await store.append({key: [NewUpdate(u, "alice", "client") for u in ups[:10]]})
        early = await history.create_version(key, "early", NAMED, "alice")
        await store.append({key: [NewUpdate(u, "alice", "client") for u in ups[10:20]]})
        middle = await history.create_version(key, "middle", AUTO, "syncd")
        assert await store.compact(key) == 20
        assert await _rows(store, key) == 0  # the log is gone: only the kept states remain
        await store.append({key: [NewUpdate(u, "alice", "client") for u in ups[20:30]]})
        late = await history.create_version(key, "late", NAMED, "alice")  # above the snapshot
        await store.append({key: [NewUpdate(u, "alice", "client") for u in ups[30:]]})
        for version, seq in ((early, 10), (middle, 20), (late, 30)):
            state = await history.version_state(key, version.id)
            assert state is not None and _text_of(state) == _text_at(ups, seq)
        assert await store.compact(key) == 40
        assert await _rows(store, key) == 0
        for version, seq in ((early, 10), (middle, 20), (late, 30)):
            state = await history.version_state(key, version.id)
            assert state is not None and _text_of(state) == _text_at(ups, seq)
        assert [v.name for v in await history.versions(key) or []] == ["late", "middle", "early"]
    finally:
        await store.close()


async def test_automatic_versions_only_for_changed_documents_and_the_newest_are_kept(
    store: SqlStore,
):
    history = SqlHistory(store)
    busy, quiet = DocKey("default", "alice/busy"), DocKey("default", "alice/quiet")
    ups, _ = text_updates(8)
    await store.append({busy: [NewUpdate(ups[0], "alice", "client")]})
    await store.append({quiet: [NewUpdate(ups[0], "alice", "client")]})
    assert {k.name for k in await history.auto_versions(0.0, 3)} == {"alice/busy", "alice/quiet"}
    # Nothing changed since: no new version, whatever the time.
    assert await history.auto_versions(0.0, 3) == []
    # Not yet due: a changed document waits for its interval.
    await store.append({busy: [NewUpdate(ups[1], "alice", "client")]})
    assert await history.auto_versions(3600.0, 3) == []
    for u in ups[2:]:
        await store.append({busy: [NewUpdate(u, "alice", "client")]})
        assert [k.name for k in await history.auto_versions(0.0, 3)] == ["alice/busy"]
    kept = await history.versions(busy) or []
    assert [v.seq for v in kept] == [8, 7, 6] and {v.kind for v in kept} == {"auto"}
    assert [v.seq for v in await history.versions(quiet) or []] == [1]
    # A named version is never trimmed by the automatic ones.
    await history.create_version(busy, "keep me", NAMED, "alice")
    await store.append({busy: [NewUpdate(b"\x00\x00", "alice", "client")]})
    for _ in range(4):
        await store.append({busy: [NewUpdate(b"\x00\x00", "alice", "client")]})
        await history.auto_versions(0.0, 3)
    names = [v.name for v in await history.versions(busy) or []]
    assert names.count("keep me") == 1 and names.count("automatic") == 3


async def test_the_sweep_makes_automatic_versions_of_a_document_that_changes(settings):
    running = await start_daemon(replace(settings, auto_version_seconds=0.2))
    try:
        sweep = running.daemon.history_sweep
        assert sweep.interval == pytest.approx(0.05)
        async with httpx.AsyncClient(base_url=running.http) as http:
            alice = CanvasWriter(http, running, "alice/swept", "alice")
            await alice.edit(lambda c: c.init("Swept"))
            key = DocKey("default", "alice/swept")
            async with asyncio.timeout(10):
                while not await running.daemon.history.versions(key):
                    await sweep.wait_passes(1)
            await alice.edit(lambda c: c.rename("changed"))
            async with asyncio.timeout(10):
                while len(await running.daemon.history.versions(key) or []) < 2:
                    await sweep.wait_passes(1)
            found = await running.daemon.history.versions(key) or []
            assert [v.kind for v in found] == ["auto", "auto"] and found[0].seq == 2
            listed = (await http.get("/v1/docs/alice/swept/versions", headers=alice.auth)).json()
            assert [v["kind"] for v in listed["versions"]] == ["auto", "auto"]
    finally:
        await running.stop()


async def test_a_window_older_than_the_kept_log_is_refused_not_guessed(database_url: str):
    store = SqlStore(database_url, retention_seconds=0.0)
    await store.open()
    history = SqlHistory(store)
    key = DocKey("default", "alice/pruned")
    ups, _ = text_updates(20)
    try:
        await store.append({key: [NewUpdate(u, "alice", "client") for u in ups[:10]]})
        await store.compact(key)  # rows 1..10 folded and pruned, no version kept them
        await store.append({key: [NewUpdate(u, "bob", "client") for u in ups[10:]]})
        with pytest.raises(HistoryGone):
            await history.history_from(key, 4)  # the document at seq 4 is gone for good
        found = await history.history_from(key, 12)  # after the snapshot: complete
        assert found is not None
        base, seq = found
        assert (base.seq, seq, [e.seq for e in base.log]) == (10, 20, list(range(11, 21)))
    finally:
        await store.close()
