"""A database that goes away: the daemon stays up, reports it, loses nothing, and recovers."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlsplit, urlunsplit

import httpx
import pycrdt
import pytest

from tests.support.servers import start_daemon
from tests.support.tcp_proxy import TcpProxy
from tests.support.yclient import YClient

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


async def test_postgres_outage_and_recovery(settings, postgres_url):
    parts = urlsplit(postgres_url)
    proxy = await TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    via_proxy = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
    running = await start_daemon(replace(settings, database_url=via_proxy))
    try:
        token = running.token("alice")
        url = running.ws_url("alice/outage", token)
        async with httpx.AsyncClient(base_url=running.http) as http, YClient(url) as watcher:
            writer = await YClient(url).connect()
            writer.doc.get("m", type=pycrdt.Map)["before"] = 1
            await watcher.wait_until(
                lambda: watcher.doc.get("m", type=pycrdt.Map).get("before") == 1
            )
            assert (await http.get("/healthz")).status_code == 200

            proxy.disconnect()
            health = await http.get("/healthz")
            assert health.status_code == 503 and health.json()["status"] == "unavailable"
            # An edit that cannot be committed is not forwarded; its sender is told to retry.
            writer.doc.get("m", type=pycrdt.Map)["during"] = 2
            await writer.wait(writer.closed)
            assert writer.close_code == 1011
            assert "during" not in watcher.doc.get("m", type=pycrdt.Map).to_py()
            assert not watcher.closed.is_set()  # the room and its other peers live on
            # New connections to documents that need loading are told to come back later.
            other = YClient(running.ws_url("alice/other", token))
            await other.connect(wait_synced=False)
            await other.wait(other.closed)
            assert other.close_code == 1013
            await other.close()

            proxy.restore()
            assert (await http.get("/healthz")).status_code == 200
            # The writer reconnects with the same replica: its edit arrives, nothing is lost.
            await writer.close()
            again = await YClient(url, writer.doc).connect()
            await watcher.wait_until(
                lambda: watcher.doc.get("m", type=pycrdt.Map).get("during") == 2
            )
            await again.close()
        async with YClient(url) as fresh:
            assert fresh.doc.get("m", type=pycrdt.Map).to_py() == {"before": 1.0, "during": 2.0}
    finally:
        proxy.restore()
        await running.stop()
        await proxy.stop()
