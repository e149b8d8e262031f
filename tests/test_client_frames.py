"""The one-pass reading of client frames (syncd/client_frames.py and the WebSocket protocol in
syncd/websocket_protocol.py): the same frames as ``websockets``' parser finds, and nothing lost or
reordered over a real socket however the stream is cut."""

from __future__ import annotations

import asyncio
import random

import pycrdt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from crdt.protocol import SyncStep, encode_sync
from syncd.client_frames import Scan, scan, unmask
from tests.support.raw_websocket import RawWebSocket
from tests.support.updates import text_updates
from tests.support.yclient import YClient

WAIT = 10.0
LIMIT = 4096

frames = st.one_of(
    st.builds(lambda p: Frame(Opcode.BINARY, p), st.binary(max_size=300)),
    st.builds(lambda p: Frame(Opcode.BINARY, p, fin=False), st.binary(max_size=40)),
    st.builds(lambda p: Frame(Opcode.CONT, p), st.binary(max_size=40)),
    st.builds(lambda p: Frame(Opcode.TEXT, p), st.binary(max_size=40)),
    st.builds(lambda p: Frame(Opcode.PING, p), st.binary(max_size=125)),
    st.builds(lambda p: Frame(Opcode.PONG, p), st.binary(max_size=125)),
)


def _websockets_frames(data: bytes) -> list[tuple[Frame, int]]:
    """Each whole frame ``websockets`` parses from ``data`` (server side), with where it ends."""
    reader = StreamReader()
    reader.feed_data(data)
    found = []
    while True:
        parser = Frame.parse(reader.read_exact, mask=True, max_size=LIMIT)
        try:
            next(parser)
        except StopIteration as done:
            found.append((done.value, len(data) - len(reader.buffer)))
            continue
        return found  # it wants more: the rest is not a whole frame


@settings(max_examples=300, deadline=None)
@given(st.lists(frames, max_size=8), st.data())
def test_scan_finds_the_frames_websockets_parses(sent: list[Frame], data: st.DataObject) -> None:
    stream = b"".join(f.serialize(mask=True) for f in sent)
    cut = data.draw(st.integers(0, len(stream)))
    stream = stream[:cut]
    pos = 0
    for frame, end in _websockets_frames(stream):
        kind, start, stop = scan(stream, pos, LIMIT)
        assert stop == end
        if frame.opcode is Opcode.BINARY and frame.fin:
            assert kind is Scan.MESSAGE and unmask(stream, start, stop) == frame.data
        else:
            assert kind is Scan.OTHER
        pos = stop
    assert scan(stream, pos, LIMIT)[0] is Scan.INCOMPLETE  # what is left is not a whole frame


def test_scan_refuses_a_frame_from_its_header() -> None:
    header = Frame(Opcode.BINARY, b"\0" * (LIMIT + 1)).serialize(mask=True)[:8]  # 2 + 2 + mask
    assert scan(header, 0, LIMIT)[0] is Scan.TOO_LARGE
    assert scan(header[:3], 0, LIMIT)[0] is Scan.INCOMPLETE  # length not all there yet


def test_an_unmasked_frame_is_websockets_to_refuse() -> None:
    unmasked = Frame(Opcode.BINARY, b"abc").serialize(mask=False)
    assert scan(unmasked, 0, LIMIT) == (Scan.OTHER, 2, 5)


# -- over a real socket ----------------------------------------------------------------------


def _stream(updates: list[bytes], *, fragment_at: int | None) -> tuple[bytes, int]:
    """The updates as masked client frames, a ping after every fifth, the one at
    ``fragment_at`` in two fragments; and how many pings."""
    out, pings = [], 0
    for i, update in enumerate(updates):
        message = encode_sync(SyncStep.UPDATE, update)
        if i == fragment_at:
            half = len(message) // 2
            out.append(Frame(Opcode.BINARY, message[:half], fin=False).serialize(mask=True))
            out.append(Frame(Opcode.CONT, message[half:]).serialize(mask=True))
        else:
            out.append(Frame(Opcode.BINARY, message).serialize(mask=True))
        if i % 5 == 4:
            out.append(Frame(Opcode.PING, b"p%d" % i).serialize(mask=True))
            pings += 1
    return b"".join(out), pings


def _cut(stream: bytes, how: str) -> list[bytes]:
    if how == "one write":
        return [stream]
    if how == "byte by byte":
        return [stream[i : i + 1] for i in range(len(stream))]
    rng = random.Random(7)
    pieces, pos = [], 0
    while pos < len(stream):
        step = rng.randint(1, 40)
        pieces.append(stream[pos : pos + step])
        pos += step
    return pieces


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["one write", "byte by byte", "random pieces"])
@pytest.mark.parametrize("fragment_at", [None, 25])
async def test_every_update_kept_in_order_however_the_stream_is_cut(daemon, how, fragment_at):
    updates, expected = text_updates(40)
    stream, pings = _stream(updates, fragment_at=fragment_at)
    url_path = f"/v1/docs/alice/cut?token={daemon.token('alice')}"
    ws = await RawWebSocket.connect(daemon.port, url_path)
    try:
        await ws.receive()  # the server's sync step 1: admitted
        for piece in _cut(stream, how):
            ws.writer.write(piece)
            await ws.writer.drain()
        pongs = []
        async with asyncio.timeout(WAIT):
            while len(pongs) < pings:
                received = await ws.receive()
                if received.opcode == Opcode.PONG:
                    pongs.append(received.payload)
        assert pongs == [b"p%d" % i for i in range(4, 40, 5)]  # each answered, in order
        async with YClient(daemon.ws_url("alice/cut", daemon.token("alice"))) as reader:
            text = reader.doc.get("t", type=pycrdt.Text)
            await reader.wait_until(lambda: str(text) == expected, timeout=WAIT)
    finally:
        ws.abort()


@pytest.mark.anyio
async def test_an_unmasked_frame_after_good_ones_closes_1002_and_keeps_the_good(daemon):
    updates, _ = text_updates(3)
    good = b"".join(
        Frame(Opcode.BINARY, encode_sync(SyncStep.UPDATE, u)).serialize(mask=True)
        for u in updates[:2]
    )
    bad = Frame(Opcode.BINARY, encode_sync(SyncStep.UPDATE, updates[2])).serialize(mask=False)
    path = f"/v1/docs/alice/bad?token={daemon.token('alice')}"
    ws = await RawWebSocket.connect(daemon.port, path)
    try:
        await ws.receive()
        await ws.send(good + bad)
        async with asyncio.timeout(WAIT):
            assert await ws.close_code() == 1002
    finally:
        ws.abort()
    async with YClient(daemon.ws_url("alice/bad", daemon.token("alice"))) as reader:
        text = reader.doc.get("t", type=pycrdt.Text)
        await reader.wait_until(lambda: str(text) == "0;1;", timeout=WAIT)


def test_an_incomplete_frame_says_where_it_will_end() -> None:
    whole = Frame(Opcode.BINARY, b"x" * 300).serialize(mask=True)
    assert scan(whole[:-1], 0, LIMIT) == (Scan.INCOMPLETE, 0, len(whole))
    assert scan(whole[:3], 0, LIMIT) == (Scan.INCOMPLETE, 0, 0)  # 16-bit length not there yet


@pytest.mark.anyio
async def test_a_large_update_in_many_small_reads_is_kept(daemon):
    doc = pycrdt.Doc()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    doc.get("t", type=pycrdt.Text).insert(0, "y" * 200_000)
    message = Frame(Opcode.BINARY, encode_sync(SyncStep.UPDATE, updates[0])).serialize(mask=True)
    path = f"/v1/docs/alice/big?token={daemon.token('alice')}"
    ws = await RawWebSocket.connect(daemon.port, path)
    try:
        await ws.receive()
        for i in range(0, len(message), 1000):
            await ws.send(message[i : i + 1000])
        async with YClient(daemon.ws_url("alice/big", daemon.token("alice"))) as reader:
            text = reader.doc.get("t", type=pycrdt.Text)
            await reader.wait_until(lambda: len(str(text)) == 200_000, timeout=WAIT)
    finally:
        ws.abort()
