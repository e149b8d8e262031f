"""Acceptance 8 of issue 8: deletion is atomic. While a ``DELETE`` runs, the document can be
neither opened nor written on any endpoint; afterwards nothing of it is stored or on the feed."""

from __future__ import annotations

import asyncio

import httpx
import pycrdt
import pytest

from storage import DocKey
from tests.support.hpclient import HpClient
from tests.support.storegate import gated_store
from tests.support.yclient import YClient

pytestmark = pytest.mark.anyio


async def test_connecting_and_writing_during_a_delete_is_refused_4404(any_daemon):
    alice = any_daemon.token("alice")
    auth = {"authorization": f"Bearer {alice}"}
    url = any_daemon.ws_url("alice/doomed", alice)
    async with httpx.AsyncClient(base_url=any_daemon.http) as http:
        writer = await YClient(url).connect()
        writer.doc.get("m", type=pycrdt.Map)["before"] = 1
        async with YClient(url) as check:
            await check.wait_until(lambda: "before" in check.doc.get("m", type=pycrdt.Map))
        with gated_store(any_daemon.daemon, "delete") as gate:
            deleting = asyncio.create_task(http.delete("/v1/docs/alice/doomed", headers=auth))
            await gate.wait_entered()  # the tombstone is being written
            await writer.wait(writer.closed)
            assert writer.close_code == 4404

            # A new connection, on either endpoint, and an HTTP write are refused.
            late = YClient(url)
            await late.connect(wait_synced=False)
            await late.wait(late.closed)
            assert late.close_code == 4404
            await late.close()
            async with HpClient(f"ws://127.0.0.1:{any_daemon.port}/v1/sync") as hp:
                doc = hp.open("alice/doomed", alice)
                await hp.wait_until(lambda: doc.denied is not None)
                assert doc.denied == "document deleted"
            post = await http.post(
                "/v1/docs/alice/doomed/updates", content=_update("during"), headers=auth
            )
            assert post.status_code == 404
            gate.open()
            assert (await deleting).status_code == 204
        await writer.close()

        # After: still refused, nothing stored, nothing on the feed.
        after = YClient(url)
        await after.connect(wait_synced=False)
        await after.wait(after.closed)
        assert after.close_code == 4404
        await after.close()
        assert await any_daemon.daemon.store.load(DocKey("default", "alice/doomed")) is None
        service = any_daemon.token("svc", role="service")
        page = await http.get(
            "/v1/feed",
            params={"prefix": "alice/doomed"},
            headers={"authorization": f"Bearer {service}", "accept": "application/json"},
        )
        assert page.status_code == 200 and page.json()["events"] == []


def _update(key: str) -> bytes:
    doc = pycrdt.Doc()
    doc.get("m", type=pycrdt.Map)[key] = 1
    return doc.get_update()
