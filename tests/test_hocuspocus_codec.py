"""The Hocuspocus framing codec as pure functions: round trips, the provider's bytes, strictness."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from crdt.hocuspocus import (
    Authenticated,
    Close,
    Frame,
    PermissionDenied,
    Stateless,
    SyncStatus,
    Token,
    TokenRequest,
    address_prefix,
    decode_frame,
    encode_frame,
    split_address,
)
from crdt.protocol import (
    AwarenessMessage,
    ProtocolError,
    QueryAwarenessMessage,
    SyncMessage,
    SyncStep,
    encode_awareness,
    encode_sync,
    write_var_string,
)

addresses = st.text(max_size=80)
texts = st.text(max_size=200)
messages = st.one_of(
    st.builds(SyncMessage, st.sampled_from(list(SyncStep)), st.binary(max_size=300)),
    st.builds(AwarenessMessage, st.binary(max_size=300)),
    st.just(QueryAwarenessMessage()),
    st.builds(Token, texts, st.none() | texts),
    st.just(TokenRequest()),
    st.builds(PermissionDenied, texts),
    st.builds(Authenticated, st.sampled_from(["readonly", "read-write"])),
    st.builds(Stateless, texts),
    st.builds(Close, st.none() | texts),
    st.builds(SyncStatus, st.booleans()),
)


@given(addresses, messages)
def test_every_message_round_trips(address, message):
    assert decode_frame(encode_frame(address, message)) == Frame(address, message)


@given(addresses, st.sampled_from(list(SyncStep)), st.binary(max_size=300))
def test_room_messages_are_framed_by_prefixing(address, step, payload):
    """What the room encodes once for y-websocket is framed per connection by concatenation."""
    framed = address_prefix(address) + encode_sync(step, payload)
    assert decode_frame(framed) == Frame(address, SyncMessage(step, payload))
    framed = address_prefix(address) + encode_awareness(payload)
    assert decode_frame(framed) == Frame(address, AwarenessMessage(payload))


def test_bytes_match_the_provider():
    """Frames as @hocuspocus/provider 4.8 and @hocuspocus/server write them (lib0 encoding)."""
    name = b"\x0dalice/journal"
    assert encode_frame("alice/journal", Token("jwt", "4.8.0")) == (
        name + b"\x02\x00\x03jwt\x054.8.0"
    )
    assert encode_frame("alice/journal", Authenticated("readonly")) == (
        name + b"\x02\x02\x08readonly"
    )
    assert encode_frame("alice/journal", PermissionDenied("no")) == name + b"\x02\x01\x02no"
    assert encode_frame("alice/journal", SyncStatus(True)) == name + b"\x08\x01"
    assert encode_frame("alice/journal", SyncStatus(False)) == name + b"\x08\x00"
    assert encode_frame("alice/journal", Close()) == name + b"\x07"
    assert encode_frame("alice/journal", Close("bye")) == name + b"\x07\x03bye"
    assert encode_frame("alice/journal", QueryAwarenessMessage()) == name + b"\x03"
    assert encode_frame("alice/journal", TokenRequest()) == name + b"\x02\x00"
    # A provider before 4.0 sends no version after the token.
    assert decode_frame(name + b"\x02\x00\x03jwt").message == Token("jwt", None)


names = st.text(max_size=40).filter(lambda s: "\0" not in s)


@given(names, st.text(max_size=40))
def test_session_addresses_split(name, session):
    """``sessionAwareness`` providers address ``name + "\\0" + session id``."""
    assert split_address(f"{name}\0{session}") == (name, session)
    assert split_address(name) == (name, None)


PREFIX = write_var_string("alice/x")
MALFORMED = {
    "empty": b"",
    "truncated address": b"\x05ab",
    "no type": PREFIX,
    "truncated varint type": PREFIX + b"\x80",
    "overlong varint": PREFIX + b"\x80" * 9,
    "address not utf-8": b"\x02\xff\xfe\x03",
    "sync reply (server-to-server)": PREFIX + b"\x04",
    "broadcast stateless": PREFIX + b"\x06\x00",
    "ping": b"\x09",
    "pong": b"\x0a",
    "unknown sync step": PREFIX + b"\x00\x03\x00",
    "sync payload past end": PREFIX + b"\x00\x02\x05ab",
    "unknown auth subtype": PREFIX + b"\x02\x03\x00",
    "unknown scope": PREFIX + b"\x02\x02\x05admin",
    "denied without reason": PREFIX + b"\x02\x01",
    "sync status 2": PREFIX + b"\x08\x02",
    "sync status missing": PREFIX + b"\x08",
    "query with trailing byte": PREFIX + b"\x03\x00",
    "token then two strings": PREFIX + b"\x02\x00\x01t\x01v\x01x",
    "close with trailing byte": PREFIX + b"\x07\x00\x00",
}


@pytest.mark.parametrize("frame", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_frames_raise(frame):
    with pytest.raises(ProtocolError):
        decode_frame(frame)


@given(st.binary(max_size=64))
@example(b"\x00\x02\x00\x00")
def test_arbitrary_bytes_decode_or_raise_protocol_error(data):
    """Never another exception; what decodes re-encodes to a frame that decodes the same."""
    try:
        frame = decode_frame(data)
    except ProtocolError:
        return
    assert decode_frame(encode_frame(frame.address, frame.message)) == frame


@given(addresses, messages)
def test_truncated_frames_never_decode_as_something_else_silently(address, message):
    """A cut frame raises, or is a shorter valid frame of the same kind (an optional trailing
    field, such as the provider version, was cut off whole)."""
    frame = encode_frame(address, message)
    for cut in range(len(frame)):
        try:
            decoded = decode_frame(frame[:cut])
        except ProtocolError:
            continue
        assert decoded.address == address
        # The one change of kind: a token request is a token message without its token.
        token_cut_off = isinstance(message, Token) and cut == len(address_prefix(address)) + 2
        expected = TokenRequest if token_cut_off else type(message)
        assert type(decoded.message) is expected


def test_authenticated_rejects_unknown_scope_when_encoding():
    with pytest.raises(ValueError):
        encode_frame("a/b", Authenticated("admin"))  # type: ignore[arg-type]
