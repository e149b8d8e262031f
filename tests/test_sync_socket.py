"""The multiplexed endpoint ``/v1/sync`` (Hocuspocus framing) over real WebSockets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pycrdt
import pytest
import websockets

from crdt.awareness import AwarenessEntry, encode_awareness_update
from crdt.hocuspocus import Authenticated, Close, SyncStatus, Token, decode_frame, encode_frame
from crdt.protocol import (
    AwarenessMessage,
    QueryAwarenessMessage,
    SyncMessage,
    SyncStep,
    write_var_string,
)
from storage import DocKey
from tests.support.hpclient import HpClient, HpDoc
from tests.support.servers import RunningDaemon, start_daemon
from tests.support.storegate import gated_commits
from tests.support.yclient import YClient

pytestmark = pytest.mark.anyio

WAIT = 10.0


def sync_url(daemon: RunningDaemon) -> str:
    return f"ws://127.0.0.1:{daemon.port}/v1/sync"


@contextlib.asynccontextmanager
async def hp_client(daemon: RunningDaemon) -> AsyncIterator[HpClient]:
    async with HpClient(sync_url(daemon)) as client:
        yield client


async def share(daemon: RunningDaemon, doc: str, grants: dict[str, str], mode: str = "shared"):
    owner = doc.split("/", 1)[0]
    async with httpx.AsyncClient(base_url=daemon.http) as http:
        r = await http.put(
            f"/v1/docs/{doc}/access",
            json={"mode": mode, "grants": grants},
            headers={"authorization": f"Bearer {daemon.token(owner)}"},
        )
    assert r.status_code == 200, r.text


async def stored_map(daemon: RunningDaemon, doc: str) -> dict:
    loaded = await daemon.daemon.store.load(DocKey("default", doc))
    replica = pycrdt.Doc()
    for update in ([loaded.snapshot] if loaded.snapshot else []) + loaded.tail:
        replica.apply_update(update)
    return replica.get("m", type=pycrdt.Map).to_py()


def mapping(hp: HpDoc | YClient) -> pycrdt.Map:
    return hp.doc.get("m", type=pycrdt.Map)


async def opened(client: HpClient, *docs: HpDoc) -> None:
    """Every doc authenticated and synced, its initial step 2 acknowledged."""
    await client.wait_until(lambda: all(d.scope and d.synced and d.unsynced == 0 for d in docs))


async def test_several_documents_on_one_socket(any_daemon):
    alice = any_daemon.token("alice")
    names = ["alice/one", "alice/two", "alice/three"]
    async with hp_client(any_daemon) as client:
        docs = [client.open(n, alice) for n in names]
        await opened(client, *docs)
        assert [d.scopes for d in docs] == [["read-write"]] * 3
        # Each document is its own: edits on the socket reach the per-document endpoint...
        for i, d in enumerate(docs):
            mapping(d)["from"] = f"socket-{i}"
        await client.wait_until(lambda: all(d.unsynced == 0 for d in docs))
        for i, name in enumerate(names):
            assert await stored_map(any_daemon, name) == {"from": f"socket-{i}"}
            async with YClient(any_daemon.ws_url(name, alice)) as y:
                assert mapping(y).to_py() == {"from": f"socket-{i}"}
                # ...and back, to that document only.
                mapping(y)["back"] = name
                await client.wait_until(lambda d=docs[i], n=name: mapping(d).get("back") == n)
        assert [mapping(d).to_py() for d in docs] == [
            {"from": f"socket-{i}", "back": n} for i, n in enumerate(names)
        ]
        assert all(d.statuses and all(d.statuses) for d in docs)


async def test_sync_status_true_only_once_stored(any_daemon):
    alice = any_daemon.token("alice")
    async with hp_client(any_daemon) as client:
        d = client.open("alice/acked", alice)
        await opened(client, d)
        acks = len(d.statuses)
        with gated_commits(any_daemon.daemon) as gate:
            mapping(d)["k"] = "v"
            await gate.wait_entered()
            # The update waits at the database. A presence message sent after it is echoed
            # first: had the server acknowledged on receipt, that SyncStatus would have come
            # before the echo. (A step 1 would not do: sync answers wait for the commit, so
            # that nobody is served state that is not stored.)
            replies = len(d.received)
            presence = [AwarenessEntry(d.doc.client_id, 1, '{"name":"alice"}')]
            d.send(AwarenessMessage(encode_awareness_update(presence)))
            await client.wait_until(
                lambda: any(isinstance(m, AwarenessMessage) for m in d.received[replies:])
            )
            assert len(d.statuses) == acks
            assert await stored_map(any_daemon, "alice/acked") == {}
            gate.open()
            await client.wait_until(lambda: len(d.statuses) > acks)
            # The moment the acknowledgement arrives, the update is in the database.
            assert await stored_map(any_daemon, "alice/acked") == {"k": "v"}
        assert d.statuses[acks:] == [True]


async def test_viewer_is_readonly_and_told_false(any_daemon):
    alice, bob = any_daemon.token("alice"), any_daemon.token("bob")
    await share(any_daemon, "alice/shared", {"bob": "viewer"})
    async with YClient(any_daemon.ws_url("alice/shared", alice)) as owner:
        mapping(owner)["alice"] = 1
        async with hp_client(any_daemon) as client:
            viewer = client.open("alice/shared", bob)
            mine = client.open("bob/notes", bob)
            # A viewer's step 2 that brings nothing new is acknowledged: nothing was refused.
            await opened(client, viewer, mine)
            assert (viewer.scopes, mine.scopes) == (["readonly"], ["read-write"])
            assert mapping(viewer).to_py() == {"alice": 1.0}
            mapping(viewer)["bob"] = 2
            mapping(mine)["bob"] = 3
            await client.wait_until(lambda: viewer.statuses[-1:] == [False] and mine.unsynced == 0)
            assert viewer.unsynced == 1
            # Live updates still reach the viewer, its edit reached nobody.
            mapping(owner)["after"] = 3
            await client.wait_until(lambda: mapping(viewer).get("after") == 3)
            assert "bob" not in mapping(owner).to_py()
    assert await stored_map(any_daemon, "alice/shared") == {"alice": 1.0, "after": 3.0}
    assert await stored_map(any_daemon, "bob/notes") == {"bob": 3.0}


async def test_refused_document_leaves_the_others_going(any_daemon):
    alice, bob = any_daemon.token("alice"), any_daemon.token("bob")
    async with YClient(any_daemon.ws_url("alice/private", alice)) as owner:
        mapping(owner)["secret"] = "alice only"
        async with hp_client(any_daemon) as client:
            mine = client.open("bob/notes", bob)
            private = client.open("alice/private", bob)
            never = client.open("carol/unborn", bob)
            bad = client.open("no-slash", bob)
            invalid = client.open("alice/bad!name", bob)
            forged = client.open("bob/forged", "not-a-jwt")
            await opened(client, mine)
            refused = [private, never, bad, invalid, forged]
            await client.wait_until(lambda: all(d.denied for d in refused))
            assert private.denied == never.denied == "no access to this document"
            assert "OWNER/NAME" in bad.denied and "bad!name" in invalid.denied
            assert forged.denied
            assert all(d.scope is None and not d.synced for d in refused)
            # Whatever the client still sends for a refused document is ignored...
            mapping(private)["bob"] = "was here"
            # ...and the socket serves the rest as before.
            mapping(mine)["still"] = "here"
            await client.wait_until(lambda: mine.unsynced == 0)
            assert not client.closed.is_set()
            assert mapping(owner).to_py() == {"secret": "alice only"}
    assert await any_daemon.daemon.store.meta(DocKey("default", "carol/unborn")) is None
    assert await any_daemon.daemon.store.meta(DocKey("default", "bob/forged")) is None
    assert await stored_map(any_daemon, "alice/private") == {"secret": "alice only"}


async def test_revocation_closes_that_document_only(any_daemon):
    alice, bob = any_daemon.token("alice"), any_daemon.token("bob")
    await share(any_daemon, "alice/team", {"bob": "editor"})
    async with (
        YClient(any_daemon.ws_url("alice/team", alice)) as owner,
        hp_client(any_daemon) as client,
    ):
        team = client.open("alice/team", bob)
        mine = client.open("bob/notes", bob)
        await opened(client, team, mine)
        team.set_awareness({"name": "bob"})
        await owner.wait_until(lambda: team.doc.client_id in owner.awareness)
        # Downgrade: the scope is announced again before the refusal of the next edit.
        await share(any_daemon, "alice/team", {"bob": "viewer"})
        mapping(team)["as_viewer"] = 1
        await client.wait_until(lambda: team.statuses[-1:] == [False])
        assert team.scopes == ["read-write", "readonly"]
        # Upgrade: announced, and a sync step 1 fetches what was dropped meanwhile.
        await share(any_daemon, "alice/team", {"bob": "editor"})
        await owner.wait_until(lambda: mapping(owner).get("as_viewer") == 1)
        assert team.scopes == ["read-write", "readonly", "read-write"]
        await share(any_daemon, "alice/team", {}, mode="private")
        await client.wait_until(lambda: team.closed is not None)
        assert team.denied == team.closed == "access revoked"
        # Its presence is gone for the others, its later edits go nowhere.
        await owner.wait_until(lambda: team.doc.client_id not in owner.awareness)
        mapping(team)["after"] = "revoked"
        mapping(mine)["still"] = "open"
        await client.wait_until(lambda: mine.unsynced == 0)
        assert not client.closed.is_set()
        room = any_daemon.daemon.rooms.get_loaded(DocKey("default", "alice/team"))
        assert room is not None and [p.principal for p in room.peers] == ["alice"]
    assert "after" not in await stored_map(any_daemon, "alice/team")


async def test_close_leaves_one_document_and_it_can_reopen(any_daemon):
    alice = any_daemon.token("alice")
    async with (
        hp_client(any_daemon) as client,
        YClient(any_daemon.ws_url("alice/a", alice)) as other,
    ):
        a, b = client.open("alice/a", alice), client.open("alice/b", alice)
        await opened(client, a, b)
        a.set_awareness({"name": "a"})
        await other.wait_until(lambda: a.doc.client_id in other.awareness)
        replica = a.doc
        client.close_doc("alice/a")
        await other.wait_until(lambda: a.doc.client_id not in other.awareness)
        mapping(other)["while"] = "away"
        mapping(b)["b"] = "open"
        await client.wait_until(lambda: b.unsynced == 0)
        again = client.open("alice/a", alice, replica)
        await opened(client, again)
        assert mapping(again).get("while") == "away"
        assert not any(isinstance(m, SyncStatus) for _, m in client.stray)


async def test_messages_before_auth_are_ignored(any_daemon):
    alice = any_daemon.token("alice")
    async with hp_client(any_daemon) as client:
        early = pycrdt.Doc()
        mapping_early = early.get("m", type=pycrdt.Map)
        mapping_early["early"] = True
        client.send_frame("alice/race", SyncMessage(SyncStep.UPDATE, early.get_update()))
        client.send_frame("alice/race", QueryAwarenessMessage())
        d = client.open("alice/race", alice, early)
        await opened(client, d)
        # The edit the server ignored came back in answer to its sync step 1.
        assert await stored_map(any_daemon, "alice/race") == {"early": True}


async def test_presence_is_relayed_and_echoed(any_daemon):
    alice = any_daemon.token("alice")
    url = any_daemon.ws_url("alice/canvas", alice)
    async with hp_client(any_daemon) as client, YClient(url) as y:
        d = client.open("alice/canvas", alice)
        await opened(client, d)
        d.set_awareness({"user": "hp"})
        y.set_awareness({"user": "y"})
        await y.wait_until(lambda: d.doc.client_id in y.awareness)
        await client.wait_until(
            lambda: y.doc.client_id in d.awareness and d.doc.client_id in d.awareness
        )
        assert y.awareness[d.doc.client_id] == {"user": "hp", "principal": "alice"}
        assert d.awareness[y.doc.client_id] == {"user": "y", "principal": "alice"}


BAD_FRAMES = {
    "truncated address": b"\x05ab",
    "unknown type": write_var_string("alice/x") + b"\x04",
    "trailing bytes": encode_frame("alice/x", QueryAwarenessMessage()) + b"\x00",
    "server-only message": encode_frame("alice/x", SyncStatus(True)),
    "not a yjs update": encode_frame("alice/x", SyncMessage(SyncStep.UPDATE, b"\x05garbage")),
    "bad awareness": write_var_string("alice/x") + b"\x01\x03\x05\x01",
    "text frame": "hello",
}


@pytest.mark.parametrize("frame", list(BAD_FRAMES.values()), ids=list(BAD_FRAMES))
async def test_malformed_frame_closes_the_socket_4400(any_daemon, frame):
    alice = any_daemon.token("alice")
    async with (
        hp_client(any_daemon) as client,
        YClient(any_daemon.ws_url("alice/x", alice)) as other,
    ):
        d = client.open("alice/x", alice)
        await opened(client, d)
        client.send_raw(frame)
        await client.wait_until(lambda: client.closed.is_set())
        assert client.close_code == 4400
        mapping(other)["k"] = "v"  # the room is unharmed
        async with YClient(any_daemon.ws_url("alice/x", alice)) as fresh:
            await fresh.wait_until(lambda: mapping(fresh).to_py() == {"k": "v"})
            # The closed socket's document left the room before its close frame went out.
            room = any_daemon.daemon.rooms.get_loaded(DocKey("default", "alice/x"))
            assert room is not None and len(room.peers) == 2


async def test_oversized_frame_closes_4413(settings):
    running = await start_daemon(replace(settings, max_message_bytes=4096))
    try:
        async with hp_client(running) as client:
            d = client.open("alice/big", running.token("alice"))
            await opened(client, d)
            mapping(d)["blob"] = "x" * 10_000
            await client.wait_until(lambda: client.closed.is_set())
            assert client.close_code == 4413
        assert await stored_map(running, "alice/big") == {}
    finally:
        await running.stop()


async def test_token_for_an_open_document_and_close_before_auth(daemon):
    alice, bob = daemon.token("alice"), daemon.token("bob")
    async with hp_client(daemon) as client:
        d = client.open("alice/t", alice)
        await opened(client, d)
        # Another token for an open document changes nothing (bob would be refused).
        client.send_frame("alice/t", Token(bob))
        client.send_frame("alice/never-opened", Close())
        mapping(d)["still"] = "alice"
        await client.wait_until(lambda: d.unsynced == 0)
        assert d.denied is None and d.scopes == ["read-write"]
        assert await stored_map(daemon, "alice/t") == {"still": "alice"}


async def test_token_expiry_closes_that_document_only(daemon):
    async with hp_client(daemon) as client:
        # Tokens carry whole seconds (iat truncated): ttl=1 may leave a few milliseconds, too
        # few to open the document on a loaded machine; ttl=3 leaves two seconds at least.
        short = client.open("alice/brief", daemon.token("alice", ttl=3))
        lasting = client.open("alice/lasting", daemon.token("alice"))
        await opened(client, short, lasting)
        await client.wait_until(lambda: short.closed is not None, timeout=10)
        assert short.denied == short.closed == "token expired"
        mapping(lasting)["still"] = "open"
        await client.wait_until(lambda: lasting.unsynced == 0)
        assert not client.closed.is_set()


async def test_shutdown_commits_then_closes_the_socket_1001(settings):
    running = await start_daemon(settings)
    try:
        async with hp_client(running) as client:
            a = client.open("alice/a", running.token("alice"))
            b = client.open("alice/b", running.token("alice"))
            await opened(client, a, b)
            with gated_commits(running.daemon) as gate:
                mapping(a)["last"] = "edit"
                await gate.wait_entered()
                stopping = asyncio.create_task(running.stop())
                gate.open()
                await client.wait_until(lambda: client.closed.is_set())
                assert client.close_code == 1001
                await stopping
    finally:
        await running.stop()
    restarted = await start_daemon(settings)
    try:
        assert await stored_map(restarted, "alice/a") == {"last": "edit"}
    finally:
        await restarted.stop()


async def test_slow_socket_closed_1013_room_goes_on(settings):
    running = await start_daemon(
        replace(settings, send_queue_messages=16, send_queue_bytes=1024 * 1024)
    )
    try:
        alice = running.token("alice")
        async with (
            YClient(running.ws_url("alice/busy", alice)) as writer,
            YClient(running.ws_url("alice/busy", alice)) as reader,
        ):
            slow = await websockets.connect(sync_url(running), max_size=None, max_queue=1)
            await slow.send(encode_frame("alice/busy", Token(alice)))
            async with asyncio.timeout(WAIT):
                while decode_frame(await slow.recv()).message != Authenticated("read-write"):
                    pass
            slow.transport.pause_reading()
            blobs = writer.doc.get("blobs", type=pycrdt.Map)
            chunk = "y" * 100_000
            seen = reader.doc.get("blobs", type=pycrdt.Map)
            for i in range(60):
                with writer.doc.transaction():
                    blobs[f"b{i}"] = chunk
                    blobs["last"] = i
                # One update per message: wait until it went round before the next.
                await reader.wait_until(lambda i=i: seen.get("last") == i, timeout=60)
            slow.transport.resume_reading()
            async with asyncio.timeout(20):
                with pytest.raises(websockets.ConnectionClosed):
                    async for _ in slow:
                        pass
            assert slow.close_code in (1013, 1006)
            assert running.daemon.metrics.closes.labels("1013")._value.get() >= 1
            room = running.daemon.rooms.get_loaded(DocKey("default", "alice/busy"))
            assert room is not None and len(room.peers) == 2
    finally:
        await running.stop()


async def test_deletion_closes_that_document_only(any_daemon):
    alice = any_daemon.token("alice")
    async with hp_client(any_daemon) as client:
        doomed, kept = client.open("alice/doomed", alice), client.open("alice/kept", alice)
        await opened(client, doomed, kept)
        async with httpx.AsyncClient(base_url=any_daemon.http) as http:
            r = await http.delete(
                "/v1/docs/alice/doomed", headers={"authorization": f"Bearer {alice}"}
            )
            assert r.status_code == 204
        await client.wait_until(lambda: doomed.closed is not None)
        assert doomed.denied == doomed.closed == "document deleted"
        # Re-opening it is refused the same way; the other document goes on.
        again = client.open("alice/doomed", alice)
        mapping(kept)["still"] = "open"
        await client.wait_until(lambda: again.denied is not None and kept.unsynced == 0)
        assert again.denied == "document deleted"
        assert not client.closed.is_set()


async def test_one_socket_counts_once_and_shutdown_says_1001(settings):
    running = await start_daemon(settings)
    stopped = False
    try:
        alice = running.token("alice")
        busy = await websockets.connect(sync_url(running))
        idle = await websockets.connect(sync_url(running))  # opens no document at all
        for name in ("alice/one", "alice/two"):
            await busy.send(encode_frame(name, Token(alice)))
        async with asyncio.timeout(WAIT):
            seen = set()
            while len(seen) < 2:
                frame = decode_frame(await busy.recv())
                if frame.message == Authenticated("read-write"):
                    seen.add(frame.address)
        async with httpx.AsyncClient(base_url=running.http) as http:
            health = (await http.get("/healthz")).json()
        assert health["connections"] == 2  # two sockets, whatever they carry
        await running.stop()
        stopped = True
        for ws in (busy, idle):
            with pytest.raises(websockets.ConnectionClosed):
                async with asyncio.timeout(WAIT):
                    while True:
                        await ws.recv()
            assert ws.close_code == 1001
    finally:
        if not stopped:
            await running.stop()
