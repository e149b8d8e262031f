"""200 clients connecting at the same instant to 20 never-opened documents are all served."""

from __future__ import annotations

import asyncio

import pycrdt
import pytest

from tests.support.yclient import YClient

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_simultaneous_first_connections(any_daemon):
    token = any_daemon.token("svc", role="service")
    clients = [
        YClient(any_daemon.ws_url(f"owner{i % 20}/fresh-{i % 20}", token)) for i in range(200)
    ]
    try:
        await asyncio.gather(*(c.connect(timeout=30) for c in clients))
        assert all(c.synced.is_set() for c in clients)
        assert len(any_daemon.daemon.rooms) == 20  # one room per document, never two
        # Every room works: one write per document reaches its nine other clients.
        for i in range(20):
            clients[i].doc.get("m", type=pycrdt.Map)["hello"] = i
        for idx, c in enumerate(clients):
            doc_no = idx % 20
            seen = c.doc.get("m", type=pycrdt.Map)
            await c.wait_until(lambda seen=seen, n=doc_no: seen.get("hello") == n)
    finally:
        await asyncio.gather(*(c.close() for c in clients))
