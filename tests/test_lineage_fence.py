"""A stock Yjs client cannot bring an erased principal back (storage/lineage_fence.py), SQLite
and Postgres.

syncd's SDKs refuse to merge a replica of an older epoch; a stock y-websocket client has no such
guard and, reconnecting after an erasure rewrote the document, sends the whole old lineage back
as its sync step 2. The server refuses it: the stored document stays without the identity.
"""

from __future__ import annotations

from typing import Any

import httpx
import pycrdt
import pytest

from crdt.updates import clock_ends
from tests.support.servers import RunningDaemon
from tests.support.yclient import YClient

pytestmark = pytest.mark.anyio

DOC = "alice/board"
BOB = "bob-f3a9"


def auth(daemon: RunningDaemon, sub: str, **kw: Any) -> dict[str, str]:
    return {"authorization": f"Bearer {daemon.token(sub, **kw)}"}


async def stored_state(http: httpx.AsyncClient, daemon: RunningDaemon) -> bytes:
    r = await http.get(f"/v1/docs/{DOC}/state", headers=auth(daemon, "alice"))
    assert r.status_code == 200, r.text
    return r.content


def votes(state: bytes) -> dict[str, Any]:
    doc = pycrdt.Doc()
    doc.apply_update(state)
    return doc.get("votes", type=pycrdt.Map).to_py()


async def test_a_stock_client_reconnecting_after_an_erasure_is_refused_its_old_lineage(
    any_daemon: RunningDaemon,
):
    daemon = any_daemon
    async with httpx.AsyncClient(base_url=daemon.http, timeout=30) as http:
        r = await http.put(
            f"/v1/docs/{DOC}/access",
            json={"mode": "shared", "grants": {BOB: "editor"}},
            headers=auth(daemon, "alice"),
        )
        assert r.status_code == 200, r.text
        # bob's identity as a map key and a value in alice's document, written by bob.
        async with YClient(daemon.ws_url(DOC, daemon.token(BOB))) as bob:
            bob.doc["votes"] = pycrdt.Map()
            bob.doc["votes"][BOB] = {"by": BOB, "choice": 2}
            # alice's stock client: it holds everything once it sees bob's vote.
            alice = YClient(daemon.ws_url(DOC, daemon.token("alice")))
            await alice.connect()
            await alice.wait_until(lambda: BOB in alice.doc.get("votes", type=pycrdt.Map))
            alice.doc["votes"]["alice"] = {"by": "alice", "choice": 1}
            # Forwarded once committed.
            await bob.wait_until(lambda: "alice" in bob.doc.get("votes", type=pycrdt.Map))
        assert BOB.encode() in await stored_state(http, daemon)  # the test can fail

        r = await http.delete(f"/v1/principals/{BOB}", headers=auth(daemon, "root", role="admin"))
        assert r.status_code == 200, r.text
        await alice.wait(alice.closed)  # the rewrite closes the document's connections
        await alice.close()
        after = await stored_state(http, daemon)
        assert BOB.encode() not in after

        # The provider reconnects with the replica it kept, as y-websocket does.
        old = alice.doc
        assert BOB.encode() in old.get_update()
        again = YClient(daemon.ws_url(DOC, daemon.token("alice")), old)
        await again.connect(wait_synced=False)
        await again.wait(again.closed)
        assert again.close_code == 4400
        assert "rewrote" in (again.close_reason or "") + (again.denied or "")
        assert (
            votes(await stored_state(http, daemon))
            == votes(after)
            == {"alice": {"by": "alice", "choice": 1.0}}
        )  # nothing of it was taken

        # The same over HTTP.
        r = await http.post(
            f"/v1/docs/{DOC}/updates", content=old.get_update(), headers=auth(daemon, "alice")
        )
        assert r.status_code == 400 and "rewrote" in r.json()["message"]

        # A fresh replica syncs the rewritten document and writes as usual.
        async with YClient(daemon.ws_url(DOC, daemon.token("alice"))) as fresh:
            assert "alice" in fresh.doc.get("votes", type=pycrdt.Map)
            assert BOB not in fresh.doc.get("votes", type=pycrdt.Map)
            fresh.doc["votes"]["carol"] = {"by": "carol", "choice": 3}
            observer = YClient(daemon.ws_url(DOC, daemon.token("alice")))
            await observer.connect()
            await observer.wait_until(lambda: "carol" in observer.doc.get("votes", type=pycrdt.Map))
            await observer.close()
        assert BOB.encode() not in await stored_state(http, daemon)


def test_clock_ends_takes_each_clients_furthest_clock():
    a, b = pycrdt.Doc(client_id=7), pycrdt.Doc(client_id=9)
    a["t"] = text = pycrdt.Text()
    text += "hello"
    first = a.get_update()
    text += " world"
    second = a.get_update(pycrdt.get_state(first))
    b["m"] = pycrdt.Map()
    b["m"]["k"] = 1
    assert clock_ends([second, first, b.get_update()]) == {7: 11, 9: 1}
