"""Presence states as stock clients read them, and the bounds of one document's presence (pure).

Every stock client ``JSON.parse``s every state it receives; where Python's ``json`` accepts more
(``NaN``, ``1e400``), the server must refuse. ``js_value`` below models what ``JSON.parse`` makes
of a text (every number a float64), so that "JavaScript reads the relayed state to the same
value as the client's own" can be checked here; ``tests/test_interop_presence.py`` checks it
with a real stock client.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crdt.awareness import (
    MAX_SAFE_INTEGER,
    MAX_STATE_DEPTH,
    AwarenessEntry,
    AwarenessLimits,
    AwarenessStates,
    StateTooLarge,
    decode_awareness,
    dump_state,
    encode_awareness_update,
    parse_state,
    stamp,
)
from crdt.protocol import ProtocolError, write_var_string, write_var_uint


def js_value(text: str) -> Any:
    """What JavaScript's ``JSON.parse`` returns for ``text``, numbers as float64 (correctly
    rounded from the decimal text, as both languages do). Raises on what JSON.parse rejects."""
    def refuse(name: str) -> Any:
        raise ValueError(name)

    value = json.loads(text, parse_int=float, parse_float=float, parse_constant=refuse)

    def check(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError("JSON.parse would give Infinity")
        if isinstance(v, dict):
            return {k: check(x) for k, x in v.items()}
        if isinstance(v, list):
            return [check(x) for x in v]
        return v

    return check(value)


def nested(depth: int) -> str:
    return '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)


# -- what is refused ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"x":NaN}',
        '{"x":Infinity}',
        '{"x":-Infinity}',
        '{"x":1e999}',
        '{"x":1e400}',
        '{"x":-1e400}',
        '{"x":1.8e308}',
        '{"x":' + "1" + "0" * 400 + "}",  # 10**400: Python keeps it exactly, JS reads Infinity
        '{"x":-' + "9" * 5000 + "}",  # past Python's int() digit limit, too
        '{"x":[1,2,{"y":NaN}]}',
    ],
    ids=lambda t: t[:24],
)
def test_numbers_javascript_cannot_represent_are_refused(text):
    with pytest.raises(ValueError):
        js_value(text)  # the model agrees: a stock client would throw or read Infinity
    with pytest.raises(ProtocolError):
        parse_state(text)
    with pytest.raises(ProtocolError):
        stamp(AwarenessEntry(1, 1, text), "alice")


@pytest.mark.parametrize("depth", [MAX_STATE_DEPTH + 1, 5000, 200_000])
def test_deep_nesting_is_a_protocol_error_never_a_recursion_error(depth):
    # 200,000 levels make Python's json raise RecursionError; it must not escape as one.
    with pytest.raises(ProtocolError, match="nested deeper"):
        parse_state(nested(depth), max_bytes=10 * depth)
    arrays = "[" * depth + "]" * depth
    with pytest.raises(ProtocolError):
        parse_state('{"a":' + arrays + "}", max_bytes=10 * depth)


def test_nesting_up_to_the_bound_is_accepted():
    assert parse_state(nested(MAX_STATE_DEPTH)) is not None


@pytest.mark.parametrize(
    "text", ["[1,2]", '"here"', "42", "true", "{", "{'a':1}", '{"a":1} x', "", "\ufeff{}"]
)
def test_non_objects_and_non_json_are_refused(text):
    with pytest.raises(ProtocolError) as refused:
        parse_state(text)
    assert not isinstance(refused.value, StateTooLarge)


def test_a_state_over_the_size_bound_is_too_large():
    limit = 1024
    fits = json.dumps({"pad": "x" * (limit - 11)})
    assert len(fits) == limit
    assert parse_state(fits, max_bytes=limit) == {"pad": "x" * (limit - 11)}
    with pytest.raises(StateTooLarge):
        parse_state(json.dumps({"pad": "x" * (limit - 10)}), max_bytes=limit)
    # Measured in UTF-8 bytes, as it travels: 400 characters of 3 bytes each are 1,200 bytes.
    with pytest.raises(StateTooLarge):
        stamp(AwarenessEntry(1, 1, json.dumps({"p": "€" * 400}, ensure_ascii=False)), "a",
              max_bytes=limit)
    assert issubclass(StateTooLarge, ProtocolError)  # if not told otherwise, still 4400


def test_client_ids_and_clocks_must_be_safe_integers():
    def update(client_id: int, clock: int) -> bytes:
        return write_var_uint(1) + write_var_uint(client_id) + write_var_uint(clock) + (
            write_var_string("{}")
        )

    assert decode_awareness(update(MAX_SAFE_INTEGER, MAX_SAFE_INTEGER - 1))
    for client_id, clock in [(MAX_SAFE_INTEGER + 1, 1), (1, MAX_SAFE_INTEGER)]:
        with pytest.raises(ProtocolError):
            decode_awareness(update(client_id, clock))


# -- what is accepted, and how it is written out ---------------------------------------------------


def test_null_however_spelt_is_a_removal():
    assert stamp(AwarenessEntry(5, 3, "null"), "a") == AwarenessEntry(5, 3, "null")
    assert stamp(AwarenessEntry(5, 3, " null\n"), "a") == AwarenessEntry(5, 3, "null")


@pytest.mark.parametrize(
    "state",
    [
        {"name": "Zoë 🦊 名前", "color": "#ff0"},
        {"cursor": {"anchor": {"type": {"client": 1, "clock": 2}, "tname": None, "assoc": 0}}},
        {"big": 1e308, "small": -1e308, "tiny": 5e-324, "zero": -0.0, "pi": 3.141592653589793},
        {"safe": MAX_SAFE_INTEGER, "unsafe": 2**53 + 1, "huge": 10**300},
        {"lone": "\ud800", "pair": "\U0001f600", "ctl": "\x00\n\u2028"},
        {"list": [1, [2, [3, []]], {"k": None}], "flag": True},
    ],
    ids=["unicode", "nested", "finite-floats", "large-ints", "surrogates", "mixed"],
)
def test_valid_states_reach_javascript_unchanged(state):
    for sent in {json.dumps(state), json.dumps(state, ensure_ascii=False, allow_nan=False)}:
        try:
            sent.encode()
        except UnicodeEncodeError:
            continue  # a lone surrogate cannot travel unescaped (it is not UTF-8)
        out = stamp(AwarenessEntry(7, 1, sent), "alice")
        out.state.encode()  # UTF-8, so it can be written as a varString
        assert js_value(out.state) == {**js_value(sent), "principal": "alice"}
        assert parse_state(out.state) == {**state, "principal": "alice"}


def test_principal_is_overwritten_and_duplicate_keys_keep_the_last():
    out = stamp(AwarenessEntry(1, 1, '{"principal":"admin","n":1,"n":2}'), "mallory")
    assert js_value(out.state) == {"principal": "mallory", "n": 2}


def test_dump_state_is_compact_and_never_nan():
    assert dump_state({"a": [1, 2.5], "é": "ü"}) == '{"a":[1,2.5],"é":"ü"}'
    with pytest.raises(ValueError):
        dump_state({"a": math.nan})


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec=None, exclude_categories=())),  # incl. non-BMP, surrogates
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=16,
)
states = st.dictionaries(st.text(max_size=8), json_values, max_size=6)


@given(states, st.sampled_from(["alice", "bob@example.org", "é-ü"]), st.booleans())
def test_stamp_keeps_every_field_and_adds_principal(state, principal, ascii_only):
    try:
        sent = json.dumps(state, ensure_ascii=ascii_only)
        sent.encode()
    except UnicodeEncodeError:
        sent = json.dumps(state)  # a lone surrogate travels escaped
    out = stamp(AwarenessEntry(3, 9, sent), principal, max_bytes=1 << 20)
    assert (out.client_id, out.clock) == (3, 9)
    assert parse_state(out.state, max_bytes=1 << 20) == {**state, "principal": principal}
    assert js_value(out.state) == {**js_value(sent), "principal": principal}


# -- the bounds of one document's presence --------------------------------------------------------


def entry(client_id: int, clock: int = 1, size: int = 0) -> AwarenessEntry:
    return AwarenessEntry(client_id, clock, json.dumps({"pad": "x" * size}))


def test_at_max_clients_new_ids_are_dropped_and_present_ones_still_update():
    refused: list[str] = []
    states = AwarenessStates(AwarenessLimits(max_clients=3), on_refused=refused.append)
    assert states.apply([entry(1), entry(2), entry(3), entry(4), entry(5)]) == [
        entry(1), entry(2), entry(3)
    ]
    assert len(states) == 3 and refused == ["clients", "clients"] and states.refused == 2
    assert states.apply([entry(2, clock=2, size=10)]) == [entry(2, clock=2, size=10)]
    assert states.apply([AwarenessEntry(3, 2, "null")])  # removals are always taken
    assert states.apply([entry(4, clock=2)]) == [entry(4, clock=2)]  # its slot is free
    assert states.apply([entry(5, clock=2)]) == []
    assert states.remove({1}) and states.apply([entry(5, clock=3)])
    assert sorted(e.client_id for e in states.live()) == [2, 4, 5]
    assert len(states) == 3 and states.refused == 3


def test_at_max_total_bytes_growing_states_are_dropped():
    one = len(entry(1, size=100).state)
    refused: list[str] = []
    states = AwarenessStates(
        AwarenessLimits(max_total_bytes=3 * one), on_refused=refused.append
    )
    assert len(states.apply([entry(i, size=100) for i in range(1, 5)])) == 3
    assert states.live_bytes == 3 * one and refused == ["bytes"]
    # Present clients update within the budget, not past it (their old state stays).
    assert states.apply([entry(1, clock=2, size=50)])
    assert not states.apply([entry(2, clock=2, size=200)])
    assert states.get(2) == entry(2, size=100)
    assert states.apply([entry(4, clock=2, size=0)])  # fits in the 50 bytes client 1 freed
    assert states.live_bytes == sum(len(e.state) for e in states.live()) <= 3 * one
    states.remove({1, 2, 3, 4})
    assert states.live_bytes == 0 and len(states) == 0


def test_greeting_stays_within_the_byte_bound_whatever_is_announced():
    limits = AwarenessLimits(max_clients=10_000, max_total_bytes=64 * 1024)
    states = AwarenessStates(limits)
    states.apply([entry(i, size=(i * 7919) % 3000) for i in range(10_000)])
    greeting = encode_awareness_update(states.live())
    assert states.live_bytes <= limits.max_total_bytes
    assert len(greeting) <= limits.max_total_bytes + 16 * len(states)  # ids, clocks, lengths
