"""The trash across nodes (issue 11): a document deleted through one node and restored through
another is served again by every node, live clients included; a purge through one node leaves
every node refusing the id. Two in-process nodes on one Postgres schema, this test's Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pycrdt
import pytest

from tests.support.cluster import Cluster, mint, running_cluster
from tests.support.redis_server import (  # noqa: F401 - fixtures
    redis_server_fixture,
    redis_url_fixture,
)
from tests.support.yclient import YClient

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.slow]

WAIT = 10.0


@pytest.fixture
async def cluster(settings, postgres_url, redis_url) -> AsyncIterator[Cluster]:
    async with running_cluster(settings, postgres_url, redis_url, 2) as nodes:
        yield nodes


def auth(sub: str) -> dict[str, str]:
    return {"authorization": f"Bearer {mint(sub)}"}


async def _refused(url: str) -> int | None:
    client = YClient(url)
    await client.connect(wait_synced=False)
    await client.wait(client.closed, WAIT)
    await client.close()
    return client.close_code


async def test_restore_from_the_trash_on_one_node_is_served_by_the_other(cluster):
    a, b = cluster
    doc = "alice/across"
    async with httpx.AsyncClient(timeout=WAIT) as http:
        async with YClient(a.ws_url(doc, mint("alice"))) as writer:
            writer.doc.get("map", type=pycrdt.Map)["kept"] = "through the trash"
            async with YClient(b.ws_url(doc, mint("alice"))) as on_b:
                await on_b.wait_until(lambda: "kept" in on_b.doc.get("map", type=pycrdt.Map), WAIT)
                assert (
                    await http.delete(f"{a.http}/v1/docs/{doc}", headers=auth("alice"))
                ).status_code == 204
                await on_b.wait(on_b.closed, WAIT)
                assert on_b.close_code == 4404
        for n in cluster:
            assert await _refused(n.ws_url(doc, mint("alice"))) == 4404, n.port
        r = await http.post(f"{b.http}/v1/docs/{doc}/restore", headers=auth("alice"))
        assert r.status_code == 200, r.text
        for n in cluster:
            async with YClient(n.ws_url(doc, mint("alice"))) as back:
                assert back.doc.get("map", type=pycrdt.Map).to_py() == {
                    "kept": "through the trash"
                }, n.port
            meta = await http.get(f"{n.http}/v1/docs/{doc}", headers=auth("alice"))
            assert meta.status_code == 200, n.port
        # Live again on both: an edit through b reaches a client on a.
        async with (
            YClient(a.ws_url(doc, mint("alice"))) as on_a,
            YClient(b.ws_url(doc, mint("alice"))) as via_b,
        ):
            via_b.doc.get("map", type=pycrdt.Map)["after"] = "restore"
            await on_a.wait_until(lambda: "after" in on_a.doc.get("map", type=pycrdt.Map), WAIT)
        # Purged through a: refused by both.
        purge = await http.delete(f"{a.http}/v1/docs/{doc}?purge=true", headers=auth("alice"))
        assert purge.status_code == 204
        for n in cluster:
            assert await _refused(n.ws_url(doc, mint("alice"))) == 4404, n.port
