"""The per-document endpoint over real WebSockets: sync, awareness, refusals, bad input."""

from __future__ import annotations

import asyncio
import logging

import pycrdt
import pytest
import websockets

from crdt.protocol import SyncStep, decode_message, encode_sync, write_var_uint
from tests.support.yclient import YClient

pytestmark = pytest.mark.anyio


async def test_two_clients_converge(any_daemon):
    tok = any_daemon.token("alice")
    url = any_daemon.ws_url("alice/notes", tok)
    async with YClient(url) as a, YClient(url) as b:
        a.doc.get("m", type=pycrdt.Map)["x"] = 1
        text = b.doc.get("t", type=pycrdt.Text)
        text += "hello"
        await a.wait_until(lambda: str(a.doc.get("t", type=pycrdt.Text)) == "hello")
        await b.wait_until(lambda: b.doc.get("m", type=pycrdt.Map).to_py() == {"x": 1.0})
    # A newcomer gets everything from the server alone.
    async with YClient(url) as c:
        assert c.doc.get("m", type=pycrdt.Map).to_py() == {"x": 1.0}
        assert str(c.doc.get("t", type=pycrdt.Text)) == "hello"


async def test_awareness_relayed_and_removed_on_disconnect(daemon):
    url = daemon.ws_url("alice/canvas", daemon.token("alice"))
    async with YClient(url) as a:
        b = await YClient(url).connect()
        b.set_awareness({"user": "b", "cursor": [1, 2]})
        await a.wait_until(lambda: b.doc.client_id in a.awareness)
        # The server stamps each state with the principal of the token it came with.
        assert a.awareness[b.doc.client_id] == {"user": "b", "cursor": [1, 2], "principal": "alice"}
        # A late joiner receives the current states on connect.
        async with YClient(url) as c:
            await c.wait_until(lambda: b.doc.client_id in c.awareness)
        await b.close()
        await a.wait_until(lambda: b.doc.client_id not in a.awareness)


async def test_missing_and_bad_tokens_refused_with_4401(daemon):
    for url in (
        daemon.ws_url("alice/journal"),
        daemon.ws_url("alice/journal", "not-a-jwt"),
    ):
        c = YClient(url)
        await c.connect(wait_synced=False)
        await c.wait(c.closed)
        assert c.close_code == 4401
        assert c.denied
    assert await daemon.daemon.store.load(_key("alice/journal")) is None


async def test_invalid_document_id_refused(daemon):
    c = YClient(daemon.ws_url("alice/bad!name", daemon.token("alice")))
    await c.connect(wait_synced=False)
    await c.wait(c.closed)
    assert c.close_code == 4400


def _key(name: str, tenant: str = "default"):
    from storage import DocKey

    return DocKey(tenant, name)


BAD_FRAMES = {
    "unknown message type": b"\x09",
    "truncated varint": b"\x00\x80",
    "length past end": b"\x00\x02\x10abc",
    "not a yjs update": encode_sync(SyncStep.UPDATE, b"\x05garbage-bytes"),
    "trailing bytes": encode_sync(SyncStep.STEP1, b"\x00") + b"\x00",
    "bad awareness": b"\x01\x03\x05\x01",
}


@pytest.mark.parametrize("frame", list(BAD_FRAMES.values()), ids=list(BAD_FRAMES))
async def test_malformed_frame_closes_only_that_peer(daemon, frame, caplog):
    url = daemon.ws_url("alice/doc", daemon.token("alice"))
    async with YClient(url) as good, YClient(url) as other:
        good.doc.get("m", type=pycrdt.Map)["k"] = "v"
        await other.wait_until(lambda: other.doc.get("m", type=pycrdt.Map).to_py() == {"k": "v"})
        bad = await YClient(url).connect()
        with caplog.at_level(logging.INFO, logger="syncd.socket"):
            await bad.send_raw(frame)
            await bad.wait(bad.closed)
        assert bad.close_code == 4400
        lines = [r.getMessage() for r in caplog.records if "alice/doc" in r.getMessage()]
        assert len(lines) == 1, lines
        # The others are still served and the document did not change.
        good.doc.get("m", type=pycrdt.Map)["k2"] = "v2"
        await other.wait_until(lambda: "k2" in other.doc.get("m", type=pycrdt.Map).to_py())
        assert not good.closed.is_set() and not other.closed.is_set()
    loaded = await daemon.daemon.store.load(_key("alice/doc"))
    doc = pycrdt.Doc()
    for u in ([loaded.snapshot] if loaded.snapshot else []) + loaded.tail:
        doc.apply_update(u)
    assert doc.get("m", type=pycrdt.Map).to_py() == {"k": "v", "k2": "v2"}


async def test_oversized_message_closes_4413(settings, tmp_path):
    from dataclasses import replace

    from tests.support.servers import start_daemon

    running = await start_daemon(replace(settings, max_message_bytes=4096))
    try:
        url = running.ws_url("alice/big", running.token("alice"))
        async with YClient(url) as watcher:
            c = await YClient(url).connect()
            d = pycrdt.Doc()
            d.get("t", type=pycrdt.Text).insert(0, "x" * 10_000)
            await c.send_raw(encode_sync(SyncStep.UPDATE, d.get_update()))
            await c.wait(c.closed)
            assert c.close_code == 4413
            assert str(watcher.doc.get("t", type=pycrdt.Text)) == ""
            assert not watcher.closed.is_set()
    finally:
        await running.stop()


async def test_text_frame_is_malformed(daemon):
    c = await YClient(daemon.ws_url("alice/t", daemon.token("alice"))).connect()
    await c.ws.send("hello")
    await c.wait(c.closed)
    assert c.close_code == 4400


async def test_slow_reader_closed_1013_room_goes_on(settings):
    from dataclasses import replace

    from tests.support.servers import start_daemon

    running = await start_daemon(
        replace(settings, send_queue_messages=16, send_queue_bytes=1024 * 1024)
    )
    try:
        url = running.ws_url("alice/busy", running.token("alice"))
        async with YClient(url) as writer, YClient(url) as reader:
            # A raw socket that never reads: its queue fills up on the server.
            slow = await websockets.connect(url, max_size=None, max_queue=1)
            slow.transport.pause_reading()
            blobs = writer.doc.get("blobs", type=pycrdt.Map)
            # ~6 MB in 60 messages: the stalled client's queue passes its 16-message bound.
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
    finally:
        await running.stop()


async def test_query_awareness_answered(daemon):
    url = daemon.ws_url("alice/q", daemon.token("alice"))
    async with YClient(url) as a, YClient(url) as b:
        a.set_awareness({"name": "a"})
        await b.wait_until(lambda: a.doc.client_id in b.awareness)
        b.awareness.clear()
        await b.send_raw(b"\x03")
        await b.wait_until(lambda: a.doc.client_id in b.awareness)


async def test_step1_answered_with_missing_updates(daemon):
    url = daemon.ws_url("alice/s", daemon.token("alice"))
    async with YClient(url) as a, YClient(url) as b:
        a.doc.get("m", type=pycrdt.Map)["a"] = 1
        await b.wait_until(lambda: b.doc.get("m", type=pycrdt.Map).to_py() == {"a": 1.0})
        raw = await websockets.connect(url)
        try:
            await raw.send(encode_sync(SyncStep.STEP1, write_var_uint(0)))
            async with asyncio.timeout(10):
                greeting = decode_message(await raw.recv())
                answer = decode_message(await raw.recv())
            # The server greets with its own step 1, as the y-websocket server does.
            assert greeting.step is SyncStep.STEP1
            assert answer.step is SyncStep.STEP2
            d = pycrdt.Doc()
            d.apply_update(answer.payload)
            assert d.get("m", type=pycrdt.Map).to_py() == {"a": 1.0}
        finally:
            await raw.close()
