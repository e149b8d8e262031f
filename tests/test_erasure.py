"""Erasure of a principal (issue 12, acceptance 4), SQLite and Postgres, over the real daemon.

bob owns documents (one live with a version, one in the trash, one purged), holds a grant on
alice's canvas and writes in it, and his identity is planted in other people's documents as a
map key deleted again (it survives garbage collection), as a live map key, as an element's
author, as an e-mail inside a journal's text, in a version's name and author, in consents, a
push subscription and an audit record. After ``DELETE /v1/principals/bob-5e1d`` (admin, with
his e-mail as an identifier): a byte search of every table (SQLite: the database file and its
WAL; Postgres: every value of every table of the schema) finds none of his strings, the feed
from the start attributes nothing to him, his old replica cannot create his documents again,
and alice's Python SDK replica of the rewritten canvas (epoch guard) does not bring anything
back when it reconnects with offline edits.
"""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path
from typing import Any

import httpx
import msgpack
import psycopg
import pycrdt
import pytest
import sqlalchemy as sa
from syncd_client import Client

from crdt.schemas import Canvas, Journal
from crdt.scrub import ERASED
from storage.principal_data import scoped
from storage.schema import audit, consents, push_subscriptions
from tests.support.history import CanvasWriter
from tests.support.servers import RunningDaemon
from tests.support.yclient import YClient

pytestmark = pytest.mark.anyio

BOB = "bob-5e1d"
EMAIL = "bob.k5e1d@example.org"
SECRET = "BOBSECRET-7a1c"  # content of bob's own documents
PLANTED = (BOB, EMAIL, SECRET)
TIMEOUT = 30.0


def auth(daemon: RunningDaemon, sub: str, **kw: Any) -> dict[str, str]:
    return {"authorization": f"Bearer {daemon.token(sub, **kw)}"}


async def post_journal(
    http: httpx.AsyncClient, daemon: RunningDaemon, name: str, who: str, body: str
):
    journal = Journal.create("Diary")
    journal.create_entry("Entry", body)
    r = await http.post(
        f"/v1/docs/{name}/updates", content=journal.doc.get_update(), headers=auth(daemon, who)
    )
    assert r.status_code == 200, r.text


async def found_in_database(database_url: str, needles: tuple[str, ...]) -> list[str]:
    """Where any needle occurs: SQLite's files, or every value of every table on Postgres."""
    raw = [n.encode() for n in needles]
    hits: list[str] = []
    if database_url.startswith("sqlite"):
        db = Path(database_url.split(":///", 1)[1])
        for path in (db, db.with_name(db.name + "-wal")):
            if path.exists():
                data = path.read_bytes()
                hits += [f"{path.name}: {n!r}" for n in raw if n in data]
        return hits
    with psycopg.connect(database_url) as conn:  # a superuser: row-level security bypassed
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema()"
            )
        ]
        assert "syncd_documents" in tables
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    data = bytes(value) if isinstance(value, bytes | memoryview) else str(value)
                    data = data if isinstance(data, bytes) else data.encode()
                    hits += [f"{table}: {n!r} in {row!r:.200}" for n in raw if n in data]
    return hits


async def feed_from_start(daemon: RunningDaemon) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after: str | None = None
    async with httpx.AsyncClient(base_url=daemon.http) as http:
        while True:
            params = {"limit": 500} | ({"after": after} if after else {})
            r = await http.get(
                "/v1/feed", params=params, headers=auth(daemon, "svc", role="service")
            )
            assert r.status_code == 200, r.text
            page = msgpack.unpackb(r.content)
            events += page["events"]
            if not page["events"]:
                return events
            after = page["next"]


async def plant(daemon: RunningDaemon, http: httpx.AsyncClient) -> None:
    # bob's own documents: live (with a version and a grant to alice), in the trash, purged.
    await post_journal(http, daemon, f"{BOB}/journal", BOB, f"{SECRET} live")
    r = await http.post(
        f"/v1/docs/{BOB}/journal/versions", json={"name": "mine"}, headers=auth(daemon, BOB)
    )
    assert r.status_code == 201, r.text
    r = await http.put(
        f"/v1/docs/{BOB}/journal/access",
        json={"mode": "shared", "grants": {"alice": "viewer"}},
        headers=auth(daemon, BOB),
    )
    assert r.status_code == 200, r.text
    for name, purge in (("trashed", "false"), ("purged", "true")):
        await post_journal(http, daemon, f"{BOB}/{name}", BOB, f"{SECRET} {name}")
        r = await http.delete(
            f"/v1/docs/{BOB}/{name}", params={"purge": purge}, headers=auth(daemon, BOB)
        )
        assert r.status_code == 204, r.text

    # alice's canvas, shared with bob, who writes in it; his identity as keys and values.
    alice = CanvasWriter(http, daemon, "alice/board", "alice")
    await alice.edit(lambda c: c.init("Board"))
    r = await http.put(
        "/v1/docs/alice/board/access",
        json={"mode": "shared", "grants": {BOB: "editor", "carol": "viewer"}},
        headers=alice.auth,
    )
    assert r.status_code == 200, r.text
    bob = CanvasWriter(http, daemon, "alice/board", BOB)
    await bob.pull()
    await bob.edit(lambda c: c.add_text("a card bob wrote", 1.0, 2.0))
    await alice.pull()

    def votes(c: Canvas) -> None:
        board = c.doc.get("votes", type=pycrdt.Map)
        board[EMAIL] = 1
        del board[EMAIL]  # deleted, yet its key stays in the encoded document
        board[BOB] = 2
        board["alice"] = 3

    await alice.edit(votes)
    r = await http.post(
        "/v1/docs/alice/board/versions", json={"name": f"for {EMAIL}"}, headers=alice.auth
    )
    assert r.status_code == 201, r.text
    r = await http.post(
        "/v1/docs/alice/board/versions", json={"name": "by bob"}, headers=auth(daemon, BOB)
    )
    assert r.status_code == 201, r.text
    await alice.edit(lambda c: c.add_text("after the versions", 3.0, 4.0))
    # Versions folded into the snapshot keep states of their own: those are rewritten too.
    room = daemon.daemon.rooms.get_loaded(_key("alice/board"))
    if room is not None:
        await room.drain()
    await daemon.daemon.store.compact(_key("alice/board"))

    # alice's journal names bob's e-mail in a sentence; another document never mentions him.
    await post_journal(http, daemon, "alice/notes", "alice", f"call {EMAIL} on monday")
    await post_journal(http, daemon, "alice/untouched", "alice", "nothing of anyone else")

    store = daemon.daemon.store
    now = time.time()
    async with scoped(store, "default", write=True) as conn:  # type: ignore[arg-type]
        await conn.execute(
            consents.insert().values(
                tenant="default", principal=BOB, purpose="analytics", granted=True, updated_at=now
            )
        )
        await conn.execute(
            push_subscriptions.insert().values(
                tenant="default",
                principal=BOB,
                endpoint="https://push.example.org/send/abc",
                p256dh="BPublicKey",
                auth="secret",
                created_at=now,
            )
        )
        await conn.execute(
            audit.insert().values(
                tenant="default",
                at=now,
                service="svc",
                purpose="analytics",
                kind="feed",
                documents=f'["alice/board", "{BOB}/journal"]',
                principals=f'["alice", "{BOB}"]',
            )
        )


def _key(name: str):  # type: ignore[no-untyped-def]
    from storage import DocKey

    return DocKey("default", name)


async def test_erasure_leaves_no_identity_anywhere_and_clients_do_not_bring_it_back(
    any_daemon: RunningDaemon, database_url: str, tmp_path: Path
):
    daemon = any_daemon
    replica = tmp_path / "alice-sdk.db"
    async with httpx.AsyncClient(base_url=daemon.http, timeout=TIMEOUT) as http:
        await plant(daemon, http)
        # alice's SDK holds the canvas as it is now (bob's key and card included).
        async with Client(
            f"ws://127.0.0.1:{daemon.port}", daemon.token("alice"), store=replica
        ) as c:
            doc = c.document("alice/board")
            await c.synced(timeout=TIMEOUT)
            old_epoch = doc.epoch
            assert BOB.encode() in doc.doc.get_update()
        untouched = await http.get("/v1/docs/alice/untouched", headers=auth(daemon, "alice"))
        untouched_epoch = untouched.json()["epoch"]
        before = await feed_from_start(daemon)
        assert any(e.get("principal") == BOB for e in before)  # the test can fail
        assert await found_in_database(database_url, PLANTED)

        refused = await http.delete(f"/v1/principals/{BOB}", headers=auth(daemon, "alice"))
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
        refused = await http.delete(f"/v1/principals/{BOB}", headers=auth(daemon, BOB))
        assert refused.status_code == 403
        refused = await http.delete(
            f"/v1/principals/{BOB}", headers=auth(daemon, "svc", role="service")
        )
        assert refused.status_code == 403
        admin = auth(daemon, "root", role="admin")
        bad = await http.request(
            "DELETE", f"/v1/principals/{BOB}", content=b'{"identifiers": "x"}', headers=admin
        )
        assert bad.status_code == 400 and bad.json()["error"] == "bad_request"
        assert (await http.delete("/v1/principals/no!such", headers=admin)).status_code == 400

        r = await http.request(
            "DELETE",
            f"/v1/principals/{BOB}",
            content=f'{{"identifiers": ["{EMAIL}"]}}'.encode(),
            headers=admin,
        )
        assert r.status_code == 200, r.text
        summary = r.json()
        assert summary["documents_purged"] == 3 and summary["tombstones_removed"] == 3
        assert summary["documents_rewritten"] == ["alice/board", "alice/notes"]
        assert summary["consents_removed"] == 1
        assert summary["push_subscriptions_removed"] == 1
        assert summary["audit_records_rewritten"] >= 1  # ours, and the feed reads above
        assert summary["files_wiped"] is (True if database_url.startswith("sqlite") else None)

        # Nothing of bob in any byte of the database.
        assert await found_in_database(database_url, PLANTED) == []

        # The feed from the start: nothing attributed to him, none of his strings.
        after = await feed_from_start(daemon)
        assert after and all(e.get("principal") != BOB for e in after)
        assert not any(p.encode() in msgpack.packb(after) for p in PLANTED)

        # alice's canvas: her content and bob's card are there, without his identity.
        meta = (await http.get("/v1/docs/alice/board", headers=auth(daemon, "alice"))).json()
        assert meta["epoch"] != old_epoch and meta["grants"] == {"carol": "viewer"}
        state = await http.get("/v1/docs/alice/board/state", headers=auth(daemon, "alice"))
        board = pycrdt.Doc()
        board.apply_update(state.content)
        cards = sorted((e["text"], e["author"]) for e in Canvas(board).elements())
        assert cards == [("a card bob wrote", ERASED), ("after the versions", "alice")]
        assert board.get("votes", type=pycrdt.Map).to_py() == {"alice": 3.0}
        versions = (
            await http.get("/v1/docs/alice/board/versions", headers=auth(daemon, "alice"))
        ).json()["versions"]
        assert sorted((v["name"], v["created_by"]) for v in versions) == [
            ("by bob", ERASED),
            (f"for {ERASED}", "alice"),
        ]
        again = (await http.get("/v1/docs/alice/untouched", headers=auth(daemon, "alice"))).json()
        assert again["epoch"] == untouched_epoch

        # bob's old replica cannot create his documents again.
        journal = Journal.create("Diary")
        journal.create_entry("again", "from the old phone")
        r = await http.post(
            f"/v1/docs/{BOB}/journal/updates",
            content=journal.doc.get_update(),
            headers=auth(daemon, BOB),
        )
        assert r.status_code == 404, r.text
        ws = YClient(daemon.ws_url(f"{BOB}/journal", daemon.token(BOB)), journal.doc)
        await ws.connect(wait_synced=False)
        await ws.wait(ws.closed)
        assert ws.close_code == 4404  # as the tombstone that is gone answered
        await ws.close()
        r = await http.put(
            f"/v1/docs/{BOB}/journal/access",
            json={"mode": "private", "grants": {}},
            headers=auth(daemon, BOB),
        )
        assert r.status_code == 404 and r.json()["error"] == "not_found"
        r = await http.put(f"/v1/docs/{BOB}/journal", headers=admin)
        assert r.status_code == 409, r.text
        r = await http.put(f"/v1/docs/{BOB}/brand-new", headers=admin)
        assert r.status_code == 409, r.text

    # alice's replica of the old lineage comes back with an offline edit: the epoch guard sets
    # it aside instead of merging bob's key and old items back into the rewritten canvas.
    offline = Client(f"ws://127.0.0.1:{daemon.port}", daemon.token("alice"), store=replica)
    try:
        doc = offline.document("alice/board")
        doc.canvas(author="alice").add_text("written offline", 5.0, 5.0)
        offline.start()
        await offline.synced(timeout=TIMEOUT)
        assert doc.epoch == meta["epoch"] and doc.resets == 1
        assert [c.doc for c in offline.recovered] == ["alice/board"]
        assert BOB.encode() not in doc.doc.get_update()
    finally:
        await offline.close()
    async with httpx.AsyncClient(base_url=daemon.http) as http:
        state = await http.get("/v1/docs/alice/board/state", headers=auth(daemon, "alice"))
    assert not any(p.encode() in state.content for p in PLANTED)
    assert await found_in_database(database_url, PLANTED) == []
    assert all(e.get("principal") != BOB for e in await feed_from_start(daemon))


async def test_a_rewritten_document_is_sealed_when_encryption_at_rest_is_on(
    settings, database_url: str, tmp_path: Path
):
    from dataclasses import replace

    from storage.sealing import is_sealed
    from tests.support.servers import start_daemon

    key_file = tmp_path / "master.key"
    key_file.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    daemon = await start_daemon(
        replace(settings, database_url=database_url, master_key_file=key_file)
    )
    try:
        async with httpx.AsyncClient(base_url=daemon.http, timeout=TIMEOUT) as http:
            alice = CanvasWriter(http, daemon, "alice/sealed", "alice")
            await alice.edit(lambda c: c.init("Sealed"))
            await alice.edit(lambda c: c.doc.get("votes", type=pycrdt.Map).update({BOB: 1}))
            r = await http.post(
                "/v1/docs/alice/sealed/versions", json={"name": "v"}, headers=alice.auth
            )
            assert r.status_code == 201
            r = await http.delete(
                f"/v1/principals/{BOB}", headers=auth(daemon, "root", role="admin")
            )
            assert r.status_code == 200 and r.json()["documents_rewritten"] == ["alice/sealed"]
            state = await http.get("/v1/docs/alice/sealed/state", headers=alice.auth)
            assert state.status_code == 200
            doc = pycrdt.Doc()
            doc.apply_update(state.content)
            assert doc.get("votes", type=pycrdt.Map).to_py() == {}
            assert Canvas(doc).to_json()["meta"]["title"] == "Sealed"
            [version] = (
                await http.get("/v1/docs/alice/sealed/versions", headers=alice.auth)
            ).json()["versions"]
            r = await http.get(
                f"/v1/docs/alice/sealed/versions/{version['id']}/state", headers=alice.auth
            )
            assert r.status_code == 200 and BOB.encode() not in r.content
        async with scoped(daemon.daemon.store, "default") as conn:  # type: ignore[arg-type]
            from storage.schema import snapshots, versions

            stored = [
                bytes(s) for s in (await conn.execute(sa.select(snapshots.c.state))).scalars()
            ]
            stored += [
                bytes(s) for s in (await conn.execute(sa.select(versions.c.state))).scalars()
            ]
        assert stored and all(is_sealed(s) for s in stored)
    finally:
        await daemon.stop()


async def test_an_identity_left_only_in_a_version_by_an_earlier_erasure_is_found(
    daemon: RunningDaemon,
):
    """Erasing carol rewrites alice's canvas: its snapshot holds only current content, but a
    version keeps (scrubbed of carol) what the canvas was then, bob's key included. Erasing bob
    afterwards must find him there."""
    admin = auth(daemon, "root", role="admin")
    async with httpx.AsyncClient(base_url=daemon.http, timeout=TIMEOUT) as http:
        alice = CanvasWriter(http, daemon, "alice/twice", "alice")
        await alice.edit(lambda c: c.init("Twice"))
        await alice.edit(lambda c: c.doc.get("votes", type=pycrdt.Map).update({BOB: 1, "carol": 2}))
        r = await http.post(
            "/v1/docs/alice/twice/versions", json={"name": "v1"}, headers=alice.auth
        )
        assert r.status_code == 201
        await alice.edit(lambda c: c.doc.get("votes", type=pycrdt.Map).pop(BOB))
        r = await http.delete("/v1/principals/carol", headers=admin)
        assert r.status_code == 200 and r.json()["documents_rewritten"] == ["alice/twice"]
        current = await http.get("/v1/docs/alice/twice/state", headers=alice.auth)
        assert BOB.encode() not in current.content
        assert await found_in_database(daemon.settings.effective_database_url, (BOB,))
        r = await http.delete(f"/v1/principals/{BOB}", headers=admin)
        assert r.status_code == 200 and r.json()["documents_rewritten"] == ["alice/twice"]
        [version] = (await http.get("/v1/docs/alice/twice/versions", headers=alice.auth)).json()[
            "versions"
        ]
        state = await http.get(
            f"/v1/docs/alice/twice/versions/{version['id']}/state", headers=alice.auth
        )
        then = pycrdt.Doc()
        then.apply_update(state.content)
        assert then.get("votes", type=pycrdt.Map).to_py() == {}  # bob's key, carol's: gone
    assert await found_in_database(daemon.settings.effective_database_url, (BOB, "carol")) == []
