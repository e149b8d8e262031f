"""A restore reaches a live stock y-websocket client (issue 11, acceptance 1): the client, in
Node with the pinned ``yjs``/``y-websocket``, holds the version's content within 1 s of the
restore being acknowledged, and its own later edits still merge."""

from __future__ import annotations

import asyncio

import httpx
import pycrdt
import pytest

from tests.support.nodeclient import require_node
from tests.support.servers import RunningDaemon
from tests.support.yclient import YClient, doc_json
from tests.test_interop_yjs import NODE_PACKAGES, ROOTS, NodeClient, covers, state_vector

pytestmark = [pytest.mark.anyio, pytest.mark.node]


@pytest.fixture(scope="module")
def node() -> str:
    return require_node(NODE_PACKAGES)


async def test_a_live_stock_client_sees_a_restore_within_a_second(any_daemon: RunningDaemon, node):
    doc = "alice/interop-history"
    auth = {"authorization": f"Bearer {any_daemon.token('alice')}"}
    client = await NodeClient.start(node, any_daemon, doc, "node-a")
    try:
        edited = await client.send(
            "edit",
            [["map.set", "title", "checkpoint"], ["text.insert", 0, "kept"], ["array.push", [1]]],
        )
        version_content = await client.dump()
        # The version is made once the server holds the client's edit (a second client sees it).
        async with YClient(any_daemon.ws_url(doc, any_daemon.token("alice"))) as witness:
            await witness.wait_until(
                lambda: covers(state_vector(witness.doc), edited["stateVector"])
            )
        async with httpx.AsyncClient(base_url=any_daemon.http) as http:
            version = (
                await http.post(f"/v1/docs/{doc}/versions", json={"name": "v"}, headers=auth)
            ).json()
            await client.send(
                "edit",
                [
                    ["map.set", "title", "scribbled"],
                    ["text.insert", -1, " and more"],
                    ["map.set", "extra", True],
                    ["array.push", [2, 3]],
                ],
            )
            assert (await client.dump()) != version_content
            r = await http.post(f"/v1/docs/{doc}/versions/{version['id']}/restore", headers=auth)
            assert r.status_code == 200, r.text
            state = (await http.get(f"/v1/docs/{doc}/state", headers=auth)).content
        served = pycrdt.Doc()
        served.apply_update(state)
        assert doc_json(served, ROOTS) == version_content
        async with asyncio.timeout(1.0):  # the acceptance bound, from the acknowledgement
            await client.send("wait-sv", state_vector(served))
        assert await client.dump() == version_content
        # The client goes on editing on top of the restored content.
        await client.send("edit", [["text.insert", -1, "!"]])
        assert (await client.dump())["text"] == "kept!"
    finally:
        await client.close()
