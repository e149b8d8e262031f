"""Idle unloading, background compaction and what /metrics and /healthz report."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx
import pycrdt
import pytest

from storage import DocKey
from tests.support.servers import start_daemon
from tests.support.yclient import YClient

pytestmark = pytest.mark.anyio


async def _until(predicate, timeout: float = 10) -> None:  # type: ignore[no-untyped-def]
    # Polls daemon internals that expose no event; each check is cheap and bounded in time.
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_idle_document_unloads_and_reloads_intact(settings, database_url):
    running = await start_daemon(
        replace(settings, database_url=database_url, idle_unload_seconds=0.1)
    )
    try:
        url = running.ws_url("alice/idle", running.token("alice"))
        async with YClient(url) as a, YClient(url) as b:
            a.doc.get("t", type=pycrdt.Text).insert(0, "kept")
            await b.wait_until(lambda: str(b.doc.get("t", type=pycrdt.Text)) == "kept")
            assert len(running.daemon.rooms) == 1
        await _until(lambda: len(running.daemon.rooms) == 0)
        async with YClient(url) as c:
            assert str(c.doc.get("t", type=pycrdt.Text)) == "kept"
    finally:
        await running.stop()


async def test_compaction_keeps_loads_short(settings, database_url):
    running = await start_daemon(
        replace(settings, database_url=database_url, compact_after_updates=20)
    )
    try:
        url = running.ws_url("alice/long", running.token("alice"))
        async with YClient(url) as a, YClient(url) as b:
            arr = a.doc.get("a", type=pycrdt.Array)
            for i in range(200):
                arr.append(i)
                await asyncio.sleep(0)  # stream them as separate updates
            seen = b.doc.get("a", type=pycrdt.Array)
            await b.wait_until(lambda: len(seen) == 200)
        store = running.daemon.store
        key = DocKey("default", "alice/long")
        await _until(lambda: running.daemon.metrics.compactions._value.get() >= 1)
        loaded = await store.load(key)
        assert loaded.snapshot is not None and loaded.snapshot_seq > 0
        assert len(loaded.tail) < 200
        async with YClient(url) as c:
            assert c.doc.get("a", type=pycrdt.Array).to_py() == [float(i) for i in range(200)]
    finally:
        await running.stop()


async def test_metrics_and_health(daemon):
    url = daemon.ws_url("alice/m", daemon.token("alice"))
    async with YClient(url) as a, YClient(url) as b:
        a.doc.get("m", type=pycrdt.Map)["x"] = 1
        await b.wait_until(lambda: b.doc.get("m", type=pycrdt.Map).get("x") == 1)
        async with httpx.AsyncClient(base_url=daemon.http) as http:
            text = (await http.get("/metrics")).text
            health = (await http.get("/healthz")).json()
    values = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert values["syncd_connections"] == 2
    assert values["syncd_open_documents"] == 1
    assert values["syncd_updates_received_total"] >= 1
    assert values["syncd_updates_stored_total"] >= 1
    assert values["syncd_persist_seconds_count"] >= 1
    assert "syncd_send_queue_messages" in values
    assert values["syncd_messages_sent_total"] >= 3  # step 1 to each, the update to b
    assert values["syncd_bytes_sent_total"] > values["syncd_messages_sent_total"]
    assert health == {
        "status": "ok",
        "database": "ok",
        "broker": "local",
        "documents": 1,
        "connections": 2,
    }
