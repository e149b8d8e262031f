"""The broadcast fast path (syncd/transport.py ``binary_writer``) and its fallback in Peer."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from syncd.peer import Peer
from syncd.transport import binary_frame

pytestmark = pytest.mark.anyio


def parse_server_frame(data: bytes) -> Frame:
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False, max_size=None)
    try:
        next(parser)
    except StopIteration as done:
        return done.value
    raise AssertionError("frame incomplete")


@settings(max_examples=200)
@given(st.one_of(
    st.binary(max_size=300),
    st.integers(min_value=65530, max_value=65540).map(lambda n: b"\x07" * n),
    st.sampled_from([b"", b"x" * 125, b"x" * 126, b"x" * 65535, b"x" * 65536, b"x" * 70000]),
))
def test_binary_frame_is_what_websockets_parses_and_serializes(payload: bytes) -> None:
    framed = binary_frame(payload)
    parsed = parse_server_frame(framed)
    assert parsed.opcode is Opcode.BINARY and parsed.fin and parsed.data == payload
    assert framed == Frame(Opcode.BINARY, payload).serialize(mask=False)


def test_binary_frame_reuses_the_frame_of_the_same_payload_only() -> None:
    payload = bytes(range(40))
    first = binary_frame(payload)
    assert binary_frame(payload) is first
    other = bytearray(payload)
    framed = binary_frame(other)
    other[0] = 99
    assert binary_frame(other) == b"\x82\x28" + bytes(other) != framed
    assert binary_frame(bytes(payload)) == first


async def test_peer_takes_the_asgi_path_where_the_fast_path_declines() -> None:
    written: list[bytes] = []
    sent: list[bytes] = []
    accept = True

    def write_now(message: bytes) -> bool:
        if accept:
            written.append(message)
        return accept

    async def send(message: bytes) -> None:
        sent.append(message)

    async def close(code: int, reason: str) -> None:
        pass

    peer = Peer("p", send, close, write_now=write_now)
    peer.send(b"one")
    accept = False
    peer.send(b"two")
    await asyncio.sleep(0)
    assert written == [b"one"] and sent == [b"two"]
