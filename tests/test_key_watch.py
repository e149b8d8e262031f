"""A tenant shredded while a daemon serves it (syncd/key_watch.py), SQLite and Postgres: the
running daemon closes that tenant's open documents and never serves them again, empty or not;
other tenants go on."""

from __future__ import annotations

import base64
import os
from dataclasses import replace
from pathlib import Path

import httpx
import pycrdt
import pytest

from storage import SqlStore
from storage.key_ring import KeyRing
from storage.rekeying import shred_tenant
from syncd.settings import Settings
from tests.support.servers import start_daemon
from tests.support.yclient import YClient

pytestmark = pytest.mark.anyio


async def test_a_tenant_shredded_while_served_is_closed_and_refused(
    settings: Settings, database_url: str, tmp_path: Path
):
    master = os.urandom(32)
    key_file = tmp_path / "master.key"
    key_file.write_text(base64.b64encode(master).decode())
    running = await start_daemon(
        replace(
            settings, database_url=database_url, master_key_file=key_file, key_check_seconds=0.2
        )
    )
    try:
        acme = running.ws_url("alice/notes", running.token("alice", tenant="acme"))
        other = running.ws_url("alice/notes", running.token("alice"))
        async with YClient(other) as b:
            b.doc["t"] = pycrdt.Text("default's words")
            a = await YClient(acme).connect()
            a.doc["t"] = pycrdt.Text("acme's words")
            async with YClient(acme) as seen:
                await seen.wait_until(lambda: "acme's" in str(seen.doc.get("t", type=pycrdt.Text)))

            # Shredded from outside the daemon, as `syncd keys shred` does.
            store = SqlStore(database_url, key_ring=KeyRing(master))
            await store.open()
            try:
                assert await shred_tenant(store, "acme", force=True) == 1
            finally:
                await store.close()

            await a.wait(a.closed, timeout=30)
            assert a.close_code == 1013
            again = await YClient(acme).connect(wait_synced=False)
            await again.wait(again.closed)
            assert again.close_code == 1013
            assert not again.synced.is_set() and not again.received_updates
            await again.close()
            headers = {"authorization": f"Bearer {running.token('alice', tenant='acme')}"}
            async with httpx.AsyncClient(base_url=running.http) as http:
                r = await http.get("/v1/docs/alice/notes/state", headers=headers)
            assert r.status_code == 503 and "shredded" in r.json()["message"]
            # The other tenant's document stayed open all along.
            assert not b.closed.is_set()
        async with YClient(other) as b2:
            assert "default's words" in str(b2.doc.get("t", type=pycrdt.Text))
        await a.close()
    finally:
        await running.stop()
