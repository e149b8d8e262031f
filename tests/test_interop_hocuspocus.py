"""Interop with a stock ``@hocuspocus/provider`` on ``/v1/sync`` (DESIGN.md §1.5).

The Node side is ``tests/interop/hp_client.mjs``: one unmodified ``HocuspocusProviderWebsocket``
carrying three unmodified ``HocuspocusProvider``s, driven over stdin/stdout. The pycrdt side uses
the per-document endpoint, so edits cross between the two endpoints through the same rooms.
"""

from __future__ import annotations

from typing import Any

import httpx
import pycrdt
import pytest

from crdt.updates import decode_state_vector
from storage import DocKey
from syncd.sync_socket import DocumentMember
from tests.support.nodeclient import NODE_WAIT_MS, NodeProcess, require_node
from tests.support.servers import RunningDaemon
from tests.support.storegate import gated_commits
from tests.support.yclient import YClient

pytestmark = [pytest.mark.anyio, pytest.mark.node]

NODE_PACKAGES = ("yjs", "ws", "lib0", "y-protocols", "@hocuspocus/provider")
WAIT = 8.0

OWN, VIEWED, PRIVATE = "alice/notes", "bob/board", "carol/diary"


@pytest.fixture(scope="module")
def node() -> str:
    return require_node(NODE_PACKAGES)


async def start_node(node: str, daemon: RunningDaemon, docs: list[str]) -> tuple[NodeProcess, Any]:
    token = daemon.token("alice")
    config = {
        "url": f"ws://127.0.0.1:{daemon.port}/v1/sync",
        "name": "hocuspocus",
        "timeoutMs": NODE_WAIT_MS,
        "docs": [{"name": d, "token": token} for d in docs],
    }
    return await NodeProcess.spawn(node, "hp_client.mjs", config, "hocuspocus")


def state_vector(doc: pycrdt.Doc) -> dict[str, int]:
    """``{str(clientID): clock}``, the shape the Node client reports."""
    return {str(client): clock for client, clock in decode_state_vector(doc.get_state()).items()}


def since(timeline: list[list[Any]], start: int, *kinds: str) -> list[list[Any]]:
    return [entry for entry in timeline[start:] if entry[0] in kinds]


async def test_stock_provider_syncs_three_documents_over_one_socket(any_daemon, node):
    """Acceptance: a stock @hocuspocus/provider syncs 3 documents over one socket, sees readonly
    scope on a viewer document and is refused on a private one."""
    tokens = {p: any_daemon.token(p) for p in ("alice", "bob", "carol")}
    async with httpx.AsyncClient(base_url=any_daemon.http) as http:
        r = await http.put(
            f"/v1/docs/{VIEWED}/access",
            json={"mode": "shared", "grants": {"alice": "viewer"}},
            headers={"authorization": f"Bearer {tokens['bob']}"},
        )
        assert r.status_code == 200
    async with (
        YClient(any_daemon.ws_url(OWN, tokens["alice"])) as own,
        YClient(any_daemon.ws_url(VIEWED, tokens["bob"])) as board,
        YClient(any_daemon.ws_url(PRIVATE, tokens["carol"])) as diary,
    ):
        own.doc.get("map", type=pycrdt.Map)["from_py"] = "before"
        board.doc.get("map", type=pycrdt.Map)["from_bob"] = "before"
        diary.doc.get("map", type=pycrdt.Map)["secret"] = "carol only"

        hp, ready = await start_node(node, any_daemon, [OWN, VIEWED, PRIVATE])
        try:
            # What the provider's own events reported.
            assert ready["docs"][OWN]["auth"] == {"scope": "read-write"}
            assert ready["docs"][VIEWED]["auth"] == {"scope": "readonly"}
            assert ready["docs"][PRIVATE]["auth"] == {"denied": "no access to this document"}
            # One socket on the server, a peer per open document on it.
            rooms = any_daemon.daemon.rooms.loaded()
            peers = [p for r in rooms for p in r.peers if isinstance(p, DocumentMember)]
            assert sorted(p.address for p in peers) == sorted([OWN, VIEWED])
            assert len({p.socket for p in peers}) == 1

            # Initial state came over; the refused document got nothing.
            for name, py in ((OWN, own), (VIEWED, board)):
                await hp.send("wait-sv", {"doc": name, "sv": state_vector(py.doc)})
            assert (await hp.send("dump", {"doc": OWN}))["map"] == {"from_py": "before"}
            assert (await hp.send("dump", {"doc": VIEWED}))["map"] == {"from_bob": "before"}
            private = await hp.send("dump", {"doc": PRIVATE})
            assert private["map"] == {} and not private["isAuthenticated"]

            # Live edits from the per-document endpoint reach the Node documents.
            own.doc.get("map", type=pycrdt.Map)["live"] = 1
            board.doc.get("map", type=pycrdt.Map)["live"] = 2
            await hp.send("wait-sv", {"doc": OWN, "sv": state_vector(own.doc)})
            await hp.send("wait-sv", {"doc": VIEWED, "sv": state_vector(board.doc)})

            # The Node client's edit: unsynced until the server says it is stored, and the
            # server says so only after the commit.
            mark = len((await hp.send("dump", {"doc": OWN}))["timeline"])
            with gated_commits(any_daemon.daemon) as gate:
                edit = await hp.send(
                    "edit", {"doc": OWN, "ops": [["map.set", "from_node", "stored?"]]}
                )
                assert edit["unsyncedChanges"] == 1
                await gate.wait_entered()
                # The update waits at the database. A query-awareness sent after it is answered
                # before any SyncStatus for it could come: none has, nothing was decremented.
                probe = await hp.send("probe", {"doc": OWN})
                assert probe["unsyncedChanges"] == 1
                assert since(probe["timeline"], mark, "syncStatus") == []
                gate.open()
                done = await hp.send("wait-unsynced", {"doc": OWN, "n": 0})
            # What brought it to 0 was the server's SyncStatus, received right before.
            tail = since(done["timeline"], mark, "syncStatus", "unsyncedChanges")
            assert tail == [["unsyncedChanges", 1], ["syncStatus", True], ["unsyncedChanges", 0]]
            await own.wait_until(
                lambda: own.doc.get("map", type=pycrdt.Map).get("from_node") == "stored?", WAIT
            )
            loaded = await any_daemon.daemon.store.load(DocKey("default", OWN))
            stored = pycrdt.Doc()
            for u in ([loaded.snapshot] if loaded.snapshot else []) + loaded.tail:
                stored.apply_update(u)
            assert stored.get("map", type=pycrdt.Map).to_py()["from_node"] == "stored?"

            # The viewer's edit is refused: SyncStatus false, still unsynced, seen by nobody.
            before = len((await hp.send("dump", {"doc": VIEWED}))["timeline"])
            edit = await hp.send("edit", {"doc": VIEWED, "ops": [["map.set", "from_alice", 1]]})
            assert edit["unsyncedChanges"] == 1
            probe = await hp.send("probe", {"doc": VIEWED})
            assert since(probe["timeline"], before, "syncStatus") == [["syncStatus", False]]
            assert probe["unsyncedChanges"] == 1
            board.doc.get("map", type=pycrdt.Map)["after"] = 3
            await hp.send("wait-sv", {"doc": VIEWED, "sv": state_vector(board.doc)})
            assert "from_alice" not in board.doc.get("map", type=pycrdt.Map).to_py()

            # bob revokes the share: that document is closed for the provider, the socket and
            # the other document go on (hp_client fails if the shared socket closes).
            before = len((await hp.send("dump", {"doc": VIEWED}))["timeline"])
            async with httpx.AsyncClient(base_url=any_daemon.http) as http:
                r = await http.put(
                    f"/v1/docs/{VIEWED}/access",
                    json={"mode": "private", "grants": {}},
                    headers={"authorization": f"Bearer {tokens['bob']}"},
                )
                assert r.status_code == 200
            done = await hp.send("wait-event", {"doc": VIEWED, "kind": "close", "after": before})
            assert since(done["timeline"], before, "authenticationFailed", "close") == [
                ["authenticationFailed", "access revoked"],
                ["close", "access revoked"],
            ]
            room = any_daemon.daemon.rooms.get_loaded(DocKey("default", VIEWED))
            assert room is not None and [p.principal for p in room.peers] == ["bob"]
            board.doc.get("map", type=pycrdt.Map)["unseen"] = True
            await hp.send("edit", {"doc": OWN, "ops": [["map.set", "after_revoke", 1]]})
            await hp.send("wait-unsynced", {"doc": OWN, "n": 0})
            await own.wait_until(
                lambda: own.doc.get("map", type=pycrdt.Map).get("after_revoke") == 1, WAIT
            )
            assert "unseen" not in (await hp.send("dump", {"doc": VIEWED}))["map"]
        finally:
            await hp.close()
        assert diary.doc.get("map", type=pycrdt.Map).to_py() == {"secret": "carol only"}
