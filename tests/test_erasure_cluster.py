"""Erasure across nodes (issue 12): a document rewritten through one node is reloaded by every
node. alice's Python SDK is live on node B while bob is erased through node A: its replica of
the old lineage is closed there (1013), it reconnects, sees the new epoch and adopts the
rewritten canvas, and nothing of bob comes back; a stock y-websocket client on node A is
closed with 1013 too. Two in-process nodes on one Postgres schema, this test's Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pycrdt
import pytest
from syncd_client import Client

from crdt.schemas import Canvas
from tests.support.cluster import Cluster, mint, running_cluster
from tests.support.redis_server import (  # noqa: F401 - fixtures
    redis_server_fixture,
    redis_url_fixture,
)
from tests.support.yclient import YClient

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.slow]

WAIT = 20.0
BOB = "bob-c1u5"


@pytest.fixture
async def cluster(settings, postgres_url, redis_url) -> AsyncIterator[Cluster]:
    async with running_cluster(settings, postgres_url, redis_url, 2) as nodes:
        yield nodes


def auth(sub: str, **kw: str) -> dict[str, str]:
    return {"authorization": f"Bearer {mint(sub, **kw)}"}


async def test_a_rewritten_document_is_reloaded_on_every_node(cluster, tmp_path: Path):
    a, b = cluster
    name = "alice/board"
    async with httpx.AsyncClient(timeout=WAIT) as http:
        canvas = Canvas.create("Board", author="alice")
        canvas.doc.get("votes", type=pycrdt.Map)[BOB] = 1
        r = await http.post(
            f"{a.http}/v1/docs/{name}/updates",
            content=canvas.doc.get_update(),
            headers=auth("alice"),
        )
        assert r.status_code == 200, r.text
        old_epoch = (await http.get(f"{a.http}/v1/docs/{name}", headers=auth("alice"))).json()[
            "epoch"
        ]
        async with Client(
            f"ws://127.0.0.1:{b.port}", mint("alice"), store=tmp_path / "sdk.db"
        ) as sdk:
            doc = sdk.document(name)
            await sdk.synced(timeout=WAIT)
            assert doc.epoch == old_epoch and BOB.encode() in doc.doc.get_update()
            async with YClient(a.ws_url(name, mint("alice"))) as stock:
                r = await http.delete(
                    f"{a.http}/v1/principals/{BOB}", headers=auth("root", role="admin")
                )
                assert r.status_code == 200 and r.json()["documents_rewritten"] == [name]
                await stock.wait(stock.closed, WAIT)
                assert stock.close_code == 1013
            new_epoch = (await http.get(f"{b.http}/v1/docs/{name}", headers=auth("alice"))).json()[
                "epoch"
            ]
            assert new_epoch != old_epoch
            await doc.wait_for(lambda: doc.epoch == new_epoch, WAIT)
            await sdk.synced(timeout=WAIT)
            assert doc.resets == 1
            assert doc.doc.get("votes", type=pycrdt.Map).to_py() == {}
            assert Canvas(doc.doc).to_json()["meta"]["title"] == "Board"
        for node in cluster:
            state = await http.get(f"{node.http}/v1/docs/{name}/state", headers=auth("alice"))
            assert state.status_code == 200 and BOB.encode() not in state.content
