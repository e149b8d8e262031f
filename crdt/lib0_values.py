"""lib0's primitives and the plain values inside Yjs updates, read strictly (no allocation before
the bytes are known to hold what a count claims).

The Yjs update decoder (:mod:`crdt.update_format`) reads its structs with these: varints, strings,
buffers, and the two kinds of plain content, lib0 Any values and JSON strings, checked for what
yrs cannot survive (nesting beyond :data:`MAX_DEPTH`, numbers beyond 2**53 or a double, unpaired
surrogates, invalid UTF-8). Every function takes the update and a position and returns the
position after what it read; a read past the end raises ``IndexError``, which the decoder turns
into "truncated update".

Pure Python (stdlib and :mod:`crdt.protocol` only), no I/O.
"""

from __future__ import annotations

import json
import re
from math import isfinite

from .protocol import ProtocolError

__all__ = [
    "ANY_ARRAY",
    "ANY_OBJECT",
    "MAX_CLOCK",
    "MAX_DEPTH",
    "MAX_SAFE_INTEGER",
    "InvalidUpdate",
    "check_json",
    "four_byte_sequences",
    "json_depth",
    "read_clock",
    "read_string",
    "read_uint",
    "skip_any_values",
    "skip_buffer",
    "skip_int",
    "uint_tail",
]


class InvalidUpdate(ProtocolError):
    """Bytes that are not a Yjs v1 update yrs can safely decode and apply."""


# Any values (and JSON) are the plain values apps put into maps and arrays: a stroke's points, a
# card's attributes. Our schemas nest them at most 2 deep and hand-written app data rarely
# passes 5 or 6; 32 leaves room for any honest use and is hundreds of times below where yrs's
# recursive decoding, conversion to Python and JSON serialisation run out of stack
# (``docs/yrs-crashes.md``), also on threads with small stacks.
MAX_DEPTH = 32

# yrs keeps clocks as ``u32`` (it would wrap past 2**32) and panics on structs whose clock is
# past 2**31 when a delete set touches them (an index computed as a signed number); yjs
# clocks count one client's edits, which never come near either.
MAX_CLOCK = 2**31 - 1
MAX_SAFE_INTEGER = 2**53 - 1  # lib0 refuses longer varints; JavaScript numbers stop being exact
_MAX_VARINT_BYTES = 8  # 56 bits: enough for any value up to MAX_SAFE_INTEGER

ANY_OBJECT, ANY_ARRAY = 118, 117  # lib0 Any tags of containers


def uint_tail(data: bytes, pos: int, first: int) -> tuple[int, int]:
    """The rest of a varUint whose first byte (>= 0x80) was ``first``; return (value, pos)."""
    byte = data[pos]
    if byte < 0x80:  # two bytes: clocks and lengths up to 16383
        return (first & 0x7F) | (byte << 7), pos + 1
    third = data[pos + 1]
    if third < 0x80:  # three bytes: up to 2**21
        return (first & 0x7F) | ((byte & 0x7F) << 7) | (third << 14), pos + 2
    # Longer ones are mostly client ids (up to 8 bytes): find the end in C, then squeeze the
    # 7-bit groups together with a few masks instead of a Python step per byte.
    match = _VARINT_REST.match(data, pos)
    if match is None:
        if len(data) - pos < _MAX_VARINT_BYTES - 1:
            raise InvalidUpdate("truncated update")
        raise InvalidUpdate("varint longer than 8 bytes")
    end = match.end()
    x = int.from_bytes(data[pos - 1 : end], "little") & 0x7F7F7F7F7F7F7F7F
    x = ((x & 0x7F007F007F007F00) >> 1) | (x & 0x007F007F007F007F)
    x = ((x & 0x3FFF00003FFF0000) >> 2) | (x & 0x00003FFF00003FFF)
    x = ((x & 0x0FFFFFFF00000000) >> 4) | (x & 0x000000000FFFFFFF)
    if x > MAX_SAFE_INTEGER:
        raise InvalidUpdate("integer beyond 2**53")
    return x, end


# After a varint's first byte: up to six more with the high bit, then one without.
_VARINT_REST = re.compile(rb"[\x80-\xff]{1,6}[\x00-\x7f]")


def read_uint(data: bytes, pos: int) -> tuple[int, int]:
    byte = data[pos]
    if byte < 0x80:
        return byte, pos + 1
    return uint_tail(data, pos + 1, byte)


def read_clock(data: bytes, pos: int) -> tuple[int, int]:
    byte = data[pos]
    if byte < 0x80:
        return byte, pos + 1
    value, pos = uint_tail(data, pos + 1, byte)
    if value > MAX_CLOCK:
        raise InvalidUpdate("clock beyond 2**31")
    return value, pos


def skip_int(data: bytes, pos: int) -> int:
    """Skip a lib0 varInt (6 bits and a sign in the first byte); return the new position."""
    byte = data[pos]
    pos += 1
    if byte < 0x80:
        return pos
    value = byte & 0x3F
    shift = 6
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if value > MAX_SAFE_INTEGER:
                raise InvalidUpdate("integer beyond 2**53")
            return pos
        shift += 7
        if shift >= 7 * _MAX_VARINT_BYTES:
            raise InvalidUpdate("varint longer than 8 bytes")


def read_string(data: bytes, pos: int) -> tuple[bytes, int]:
    """A varString's UTF-8 bytes, checked; return (bytes, pos after it)."""
    length = data[pos]
    pos += 1
    if length >= 0x80:
        length, pos = uint_tail(data, pos, length)
    end = pos + length
    if end > len(data):
        raise InvalidUpdate("string runs past the end of the update")
    raw = data[pos:end]
    if not raw.isascii():
        try:
            raw.decode()
        except UnicodeDecodeError:
            raise InvalidUpdate("string is not UTF-8") from None
    return raw, end


def skip_buffer(data: bytes, pos: int) -> int:
    length = data[pos]
    pos += 1
    if length >= 0x80:
        length, pos = uint_tail(data, pos, length)
    end = pos + length
    if end > len(data):
        raise InvalidUpdate("buffer runs past the end of the update")
    return end


def four_byte_sequences(raw: bytes) -> int:
    """How many characters of the (valid) UTF-8 ``raw`` lie beyond the BMP: its four-byte
    sequences, whose lead bytes F0..F4 occur nowhere else in valid UTF-8."""
    return len(raw.translate(None, _ALL_BUT_FOUR_BYTE_LEADS))


_ALL_BUT_FOUR_BYTE_LEADS = bytes(b for b in range(256) if not 0xF0 <= b <= 0xF4)


def skip_any_values(data: bytes, pos: int, count: int, level: int, keyed: bool) -> tuple[int, int]:
    """Skip ``count`` lib0 Any values (each after a string key if ``keyed``) inside ``level``
    containers; return (pos, the deepest container level met).

    Scalars and short strings are read inline, containers recurse: most values are numbers,
    strings and small objects.
    """
    n = len(data)
    deepest = level
    for _ in range(count):
        if keyed:
            length = data[pos]
            if length < 0x80:
                end = pos + 1 + length
                if end > n:
                    raise InvalidUpdate("string runs past the end of the update")
                if not data[pos + 1 : end].isascii():
                    read_string(data, pos)  # checks the UTF-8
                pos = end
            else:
                pos = read_string(data, pos)[1]
        tag = data[pos]
        pos += 1
        if tag == 125:  # varInt
            if data[pos] < 0x80:
                pos += 1
            else:
                pos = skip_int(data, pos)
        elif tag == 119:  # string
            length = data[pos]
            if length < 0x80:
                end = pos + 1 + length
                if end > n:
                    raise InvalidUpdate("string runs past the end of the update")
                if not data[pos + 1 : end].isascii():
                    read_string(data, pos)
                pos = end
            else:
                pos = read_string(data, pos)[1]
        elif tag in (123, 122):  # float64, BigInt64
            pos += 8
        elif tag == 124:  # float32
            pos += 4
        elif tag in (126, 127, 120, 121):  # null, undefined, true, false
            pass
        elif tag in (ANY_OBJECT, ANY_ARRAY):
            if level >= MAX_DEPTH:
                raise InvalidUpdate(f"Any values nested deeper than {MAX_DEPTH}")
            inner, pos = read_uint(data, pos)
            if tag == ANY_ARRAY:
                if inner > n - pos:  # every value takes a byte at least
                    raise InvalidUpdate("Any array longer than the update")
            elif inner > (n - pos) >> 1:  # a key length and a value tag at least
                raise InvalidUpdate("Any object larger than the update")
            pos, depth = skip_any_values(data, pos, inner, level + 1, tag == ANY_OBJECT)
            if depth > deepest:
                deepest = depth
        elif tag == 116:  # Uint8Array
            pos = skip_buffer(data, pos)
        else:
            raise InvalidUpdate(f"unknown Any tag {tag}")
    if pos > n:
        raise InvalidUpdate("number runs past the end of the update")
    return pos, deepest


def _reject_constant(name: str) -> None:
    raise InvalidUpdate(f"JSON holds {name}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not isfinite(value):
        raise InvalidUpdate("JSON number overflows a double")
    return value


# JSON that needs no parser: what most formats and embeds are (``true``, ``null``, a colour,
# ``{"href": "..."}``). Integers of up to 15 digits are exact doubles; strings hold no escape
# or control character (their UTF-8 was checked when read). Scalars have depth 0, flat objects
# and arrays of them depth 1.
_JSON_SCALAR = rb'(?:true|false|null|-?(?:0|[1-9][0-9]{0,14})|"[^"\\\x00-\x1f]*")'
_JSON_STRING = rb'"[^"\\\x00-\x1f]*"'
_SIMPLE_JSON = re.compile(_JSON_SCALAR + rb"\Z")
_FLAT_JSON = re.compile(
    rb"(?:\{(?:%s:%s(?:,%s:%s)*)?\}|\[(?:%s(?:,%s)*)?\])\Z"
    % (_JSON_STRING, _JSON_SCALAR, _JSON_STRING, _JSON_SCALAR, _JSON_SCALAR, _JSON_SCALAR)
)


def check_json(data: bytes, pos: int) -> tuple[int, int]:
    """Check a varString of JSON (Embed, Format, JSON content); return (pos, its depth)."""
    raw, pos = read_string(data, pos)
    if _SIMPLE_JSON.match(raw):
        return pos, 0
    if _FLAT_JSON.match(raw):
        return pos, 1
    text = raw.decode()
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except InvalidUpdate:
        raise
    except RecursionError:
        raise InvalidUpdate(f"JSON nested deeper than {MAX_DEPTH}") from None
    except ValueError:  # JSONDecodeError, and ints past Python's digit limit
        raise InvalidUpdate("content is not JSON") from None
    depth = json_depth(value) if b"[" in raw or b"{" in raw else 0  # else a scalar
    if depth > MAX_DEPTH:
        raise InvalidUpdate(f"JSON nested deeper than {MAX_DEPTH}")
    if b"\\u" in raw:
        try:  # an unpaired \ud800 escape: JSON.parse takes it, serde_json (yrs) does not
            json.dumps(value, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise InvalidUpdate("JSON string holds an unpaired surrogate") from None
    return pos, depth


def json_depth(value: object, limit: int = MAX_DEPTH) -> int:
    """How many containers (lists, dicts) ``value`` nests, counted without recursion; stops
    once past ``limit`` (the result is then only known to exceed it). Also used for awareness
    states (``crdt.awareness``)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if level > deepest:
            deepest = level
            if deepest > limit:
                return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest
