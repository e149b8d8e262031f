"""The y-protocols codec and awareness rules, as pure functions (hypothesis round trips)."""

from __future__ import annotations

import contextlib

import pycrdt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crdt.awareness import (
    AwarenessEntry,
    AwarenessStates,
    decode_awareness,
    encode_awareness_update,
)
from crdt.protocol import (
    AuthMessage,
    AwarenessMessage,
    Decoder,
    ProtocolError,
    QueryAwarenessMessage,
    SyncMessage,
    SyncStep,
    decode_message,
    encode_auth_denied,
    encode_awareness,
    encode_query_awareness,
    encode_sync,
    write_var_uint,
)
from crdt.updates import decode_state_vector, merge, validate_update

uints = st.integers(min_value=0, max_value=2**53 - 1)


@given(uints)
def test_var_uint_round_trip(n):
    dec = Decoder(write_var_uint(n))
    assert dec.read_var_uint() == n
    assert dec.at_end()


def test_var_uint_matches_lib0():
    # Values from lib0's encoding: 7 bits per byte, little-endian, high bit = more.
    assert write_var_uint(0) == b"\x00"
    assert write_var_uint(127) == b"\x7f"
    assert write_var_uint(128) == b"\x80\x01"
    assert write_var_uint(300) == b"\xac\x02"


@given(st.sampled_from(list(SyncStep)), st.binary(max_size=300))
def test_sync_round_trip(step, payload):
    assert decode_message(encode_sync(step, payload)) == SyncMessage(step, payload)


@given(st.binary(max_size=300))
def test_awareness_message_round_trip(update):
    assert decode_message(encode_awareness(update)) == AwarenessMessage(update)


@given(st.text(max_size=50))
def test_auth_round_trip(reason):
    assert decode_message(encode_auth_denied(reason)) == AuthMessage(reason)


def test_query_awareness():
    assert decode_message(encode_query_awareness()) == QueryAwarenessMessage()


@given(st.binary(max_size=64))
def test_decoder_never_raises_anything_but_protocol_error(frame):
    with contextlib.suppress(ProtocolError):
        decode_message(frame)


@pytest.mark.parametrize(
    "frame",
    [b"", b"\x00", b"\x00\x00", b"\x00\x00\x05ab", b"\x80", b"\x00\x03\x00", b"\x02\x01",
     b"\x01\x01", b"\x03\x00", b"\x00" + b"\xff" * 9],
)
def test_bad_frames_raise(frame):
    with pytest.raises(ProtocolError):
        decode_message(frame)


entries = st.lists(
    st.builds(
        AwarenessEntry,
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**31),
        st.one_of(st.just("null"), st.text(max_size=20).map(lambda s: f'{{"n":{len(s)}}}')),
    ),
    max_size=10,
)


@given(entries)
def test_awareness_update_round_trip(es):
    assert decode_awareness(encode_awareness_update(es)) == es


def test_awareness_clock_rules():
    states = AwarenessStates()
    assert states.apply([AwarenessEntry(1, 2, '{"a":1}')])
    assert not states.apply([AwarenessEntry(1, 1, '{"a":0}')])  # stale
    assert states.apply([AwarenessEntry(1, 2, "null")])  # same clock, removal wins
    assert len(states) == 0
    assert not states.apply([AwarenessEntry(1, 2, '{"a":1}')])  # cannot resurrect
    assert states.apply([AwarenessEntry(1, 3, '{"a":3}')])
    assert states.remove({1}) == [AwarenessEntry(1, 4, "null")]
    assert states.remove({1}) == []


def test_validate_update():
    doc = pycrdt.Doc()
    doc.get("t", type=pycrdt.Text).insert(0, "hi")
    validate_update(doc.get_update())
    validate_update(b"\x00\x00")
    for bad in (b"", b"\x05garbage", doc.get_update()[:-2]):
        with pytest.raises(ProtocolError):
            validate_update(bad)


def test_merge_and_state_vector():
    a, b = pycrdt.Doc(client_id=1), pycrdt.Doc(client_id=2)
    a.get("t", type=pycrdt.Text).insert(0, "aa")
    b.get("t", type=pycrdt.Text).insert(0, "b")
    merged = merge([a.get_update(), b.get_update()])
    c = pycrdt.Doc()
    c.apply_update(merged)
    assert decode_state_vector(c.get_state()) == {1: 2, 2: 1}


def test_awareness_remembers_a_bounded_number_of_departed_clients():
    states = AwarenessStates(max_gone=3)
    for cid in range(10):
        states.apply([AwarenessEntry(cid, 1, '{"a":1}')])
        states.remove({cid})
    assert len(states._states) == 3  # the last three departures are remembered
    assert not states.apply([AwarenessEntry(9, 1, '{"a":1}')])  # still recognised as stale
    assert len(states) == 0
