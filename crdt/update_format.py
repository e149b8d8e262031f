"""A strict structural decoder of the Yjs update format v1, run before any update reaches yrs.

yrs (pycrdt's Rust core) trusts the bytes it decodes: a value nested thousands of levels deep
overflows its stack (SIGSEGV, the whole process), an item of length 0 or a clock past 2**31
makes it panic, and some shapes it reads differently from yjs (``docs/yrs-crashes.md``). So every
update a client sends is decoded here first, completely, in pure Python, and refused with
:class:`InvalidUpdate` (a :class:`~crdt.protocol.ProtocolError`: close 4400) unless yrs can
decode and apply it. Nothing here allocates in proportion to a count before checking that the
remaining bytes can hold that many elements.

The format, as yjs 13 writes it (``UpdateEncoderV1``, ``writeClientsStructs``,
``writeDeleteSet``; lib0 varints: 7 bits per byte, little end first)::

    update   := varUint(#blocks) block* deleteSet
    block    := varUint(#structs) varUint(client) varUint(clock) struct*
    struct   := info:u8 ...        info & 31 = 0: GC, 10: Skip (varUint len), else an Item
    item     := [origin ID if info & 0x80] [right origin ID if info & 0x40]
                [if neither: varUint(1) varString(root name) | varUint(0) ID(parent),
                             then varString(parentSub) if info & 0x20]
                content(info & 31)
    content  := 1 Deleted varUint(len) | 2 JSON varUint(n) varString(json)*n | 3 Binary buf
              | 4 String varString | 5 Embed varString(json) | 6 Format varString(key) json
              | 7 Type typeRef:u8 (3 XmlElement, 5 XmlHook: + varString(name)) | 8 Any n any*n
              | 9 Doc varString(guid) any(options)
    ID       := varUint(client) varUint(clock)
    deleteSet:= varUint(#clients) (varUint(client) varUint(#ranges) (clock len)*)*

Each struct's clock is implied: the block's clock plus the lengths of the structs before it, so
lengths must be right. An item's length is what yjs counts: a String's UTF-16 code units, the
number of Any/JSON values, a Deleted's len, 1 for everything else.

Refused, beyond bytes that do not decode (truncated or overlong varints, counts and lengths the
remaining bytes cannot hold, unknown refs, invalid UTF-8, trailing bytes):

- **Length 0**: items of length 0 (yrs panics when they are all a block holds at the client's
  next clock; no writer means to make them), GCs, Skips and delete ranges of length 0, client
  blocks without structs (the same panic).
- **Nesting** of Any values and JSON beyond :data:`MAX_DEPTH`, and of shared types within one
  update beyond :data:`MAX_TYPE_DEPTH`: yrs recurses per level and overflows its stack.
- **What yrs reads differently from yjs**, so that the document a browser sees and the one the
  server stores would part ways: ``ContentJSON`` (yrs 0.28 reads one string more than the count
  says; yjs has not written it since 13.0), ``Y.XmlHook`` (yrs does not read its name), content
  refs with bit 0x10 (yrs ignores it), type refs beyond 6, GC/Skip infos with flag bits, parent
  infos other than 0/1, a client repeated in the structs (yjs keeps its last block, yrs all) or
  in the delete set (yjs merges, yrs keeps the last), delete ranges out of order or overlapping
  (yrs assumes them sorted).
- **Numbers yrs or JavaScript cannot hold**: clocks and clock + length beyond ``2**31 - 1`` (yrs
  keeps clocks as ``u32`` and panics past ``2**31``; the JavaScript bound of ``2**53`` is looser),
  client ids and Any integers beyond ``2**53 - 1``, JSON with NaN/Infinity, numbers that
  overflow a double, or unpaired surrogates (``serde_json`` refuses those).
- **Impossible references** within one client's structs: an origin, right origin or parent
  with the item's own client and a clock not before the item's; a Format item under a map key
  (formats belong in text; yrs panics computing that map's events); an origin, right origin or
  deleted range that splits a surrogate pair of a string in the same update (yrs then writes
  clocks that do not match its strings).

What needs the document (does the parent exist, is the origin there, is it a map entry or in
the middle of a surrogate pair) is left to yrs and the daemon's guard around it
(``crdt/yrs_guard.py``); ``docs/yrs-crashes.md`` lists what remains.

Example::

    shape = decode_update(update)        # raises InvalidUpdate
    shape.state_vector                   # {client: clock}, as pycrdt.get_state computes it
    shape.delete_set                     # {client: [(clock, len), ...]}

Pure Python (stdlib and :mod:`crdt.lib0_values` only), no I/O.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import NamedTuple

from .lib0_values import (
    ANY_OBJECT,
    MAX_CLOCK,
    MAX_DEPTH,
    InvalidUpdate,
    check_json,
    four_byte_sequences,
    read_clock,
    read_string,
    read_uint,
    skip_any_values,
    skip_buffer,
    uint_tail,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_TYPE_DEPTH",
    "InvalidUpdate",
    "UpdateShape",
    "decode_delete_set",
    "decode_update",
]

# Shared types nest more: rich text is a tree of XML elements (a list item in a list in a
# quote...). Our schemas nest 3 deep; 32 levels of indented lists in ProseMirror are 64 or so.
# yrs walks types recursively too (``to_json`` overflows an 8 MiB stack near 16,000 levels).
# Only chains within one update can be measured without the document.
MAX_TYPE_DEPTH = 128


# Content refs (info & 31).
_GC, _DELETED, _JSON, _BINARY, _STRING, _EMBED, _FORMAT, _TYPE, _ANY, _DOC, _SKIP = range(11)
_XML_ELEMENT, _XML_HOOK, _LAST_TYPE_REF = 3, 5, 6
_HAS_ORIGIN, _HAS_RIGHT_ORIGIN, _HAS_PARENT_SUB = 0x80, 0x40, 0x20


class UpdateShape(NamedTuple):
    """What an update holds, short of its content.

    Attributes:
        clients: per client, the clock range ``(first, end)`` its structs cover (end exclusive).
        state_vector: per client, the clock the update brings that client to, as yjs'
            ``encodeStateVectorFromUpdate`` and ``pycrdt.get_state`` compute it: only clients
            whose structs start at clock 0, up to their first Skip.
        delete_set: per client, the deleted ranges ``(clock, len)``, sorted; clients without
            ranges are left out, as yjs does.
        struct_count: number of structs (items, GCs, Skips).
        max_depth: deepest nesting of Any/JSON values (0: scalars only).
        type_depth: depth of the deepest shared type the update's items create, as far as
            it can be told within the update (root types are 1, a map in a root map 2; a type
            whose parent is not in the update counts as 2; 0: the update creates no types).
    """

    clients: dict[int, tuple[int, int]]
    state_vector: dict[int, int]
    delete_set: dict[int, list[tuple[int, int]]]
    struct_count: int
    max_depth: int
    type_depth: int

    @property
    def deletes_anything(self) -> bool:
        return bool(self.delete_set)


def decode_update(update: bytes | bytearray | memoryview) -> UpdateShape:
    """Decode a whole Yjs v1 update strictly; return its shape.

    Raises:
        InvalidUpdate: the update does not decode, or holds something yrs cannot survive or
            would read differently from yjs (see the module docstring); the message says what.
    """
    data = update if type(update) is bytes else bytes(update)
    try:
        return _decode(data)
    except IndexError:  # every read past the end lands here: data[pos] with pos == len(data)
        raise InvalidUpdate("truncated update") from None
    except RecursionError:  # cannot happen below MAX_DEPTH; belt and braces
        raise InvalidUpdate("nesting too deep") from None


def decode_delete_set(update: bytes | bytearray | memoryview) -> dict[int, list[tuple[int, int]]]:
    """The delete set of ``update``: ``{client: [(clock, len), ...]}``, ranges sorted.

    The delete set follows the structs without a length prefix, so this decodes (and checks)
    the whole update.
    """
    return decode_update(update).delete_set


class _TypeLevels:
    """How deep the shared types are that the items of one update sit in.

    An item's level is the depth of its parent type, root types being 1: given by its parent
    ID (a type item of this update, or else unknown: 1), or inherited from its origin (or right
    origin) item. Only items below the root level are recorded, per client in clock order, so
    that an origin anywhere inside a multi-unit item finds it.
    """

    __slots__ = ("deepest", "ranges", "types")

    def __init__(self) -> None:
        self.types: dict[tuple[int, int], int] = {}  # type item ID -> level of its children
        self.ranges: dict[int, tuple[list[int], list[int], list[int]]] = {}
        self.deepest = 0

    def of_item(self, client: int, clock: int) -> int:
        """The level of the item holding ``(client, clock)``, 1 if it is not in the update."""
        found = self.ranges.get(client)
        if found is None:
            return 1
        starts, ends, levels = found
        i = bisect_right(starts, clock) - 1
        if i >= 0 and clock < ends[i]:
            return levels[i]
        return 1

    def record(self, client: int, clock: int, length: int, level: int, is_type: bool) -> None:
        if is_type:
            inner = level + 1
            if inner > MAX_TYPE_DEPTH:
                raise InvalidUpdate(f"shared types nested deeper than {MAX_TYPE_DEPTH}")
            self.types[(client, clock)] = inner
            if inner > self.deepest:
                self.deepest = inner
        if level > 1:
            found = self.ranges.get(client)
            if found is None:
                found = self.ranges[client] = ([], [], [])
            found[0].append(clock)
            found[1].append(clock + length)
            found[2].append(level)


def _decode(data: bytes) -> UpdateShape:
    # One function with its varint reads inlined where the bytes are usually small: this runs
    # on every update a client sends. Client ids are long varints (53 bits in pycrdt, 32 in
    # yjs) and an update names few of them, so the last one read is remembered as bytes.
    n = len(data)
    count, pos = read_uint(data, 0)
    if count > n - pos:
        raise InvalidUpdate("more client blocks than the update has bytes")
    clients: dict[int, tuple[int, int]] = {}
    state_vector: dict[int, int] = {}
    levels: _TypeLevels | None = None  # made at the first item that needs it
    # Per client, its String items with characters beyond the BMP: (clock, length, UTF-8).
    astral: dict[int, list[tuple[int, int, bytes]]] = {}
    struct_count = 0
    max_depth = 0
    last_raw, last_client = b"\x00", 0  # the varint bytes of the last client id read
    for _ in range(count):
        structs, pos = read_uint(data, pos)
        if structs == 0:
            raise InvalidUpdate("client block without structs")
        if structs > (n - pos) >> 1:  # every struct takes two bytes at least
            raise InvalidUpdate("more structs than the update has bytes")
        if data.startswith(last_raw, pos):
            client = last_client
            pos += len(last_raw)
        else:
            client, end = read_uint(data, pos)
            last_raw, last_client = data[pos:end], client
            pos = end
        if client in clients:
            raise InvalidUpdate(f"client {client} has two blocks")
        clock, pos = read_clock(data, pos)
        first = clock
        contiguous = first == 0  # the state vector counts from clock 0 to the first Skip
        struct_count += structs
        for _ in range(structs):
            info = data[pos]
            pos += 1
            ref = info & 0x1F
            if ref in (_GC, _SKIP):
                if info != ref:
                    raise InvalidUpdate(f"GC/Skip with flags {info:#x}")
                length = data[pos]
                pos += 1
                if length >= 0x80:
                    length, pos = uint_tail(data, pos, length)
                if length == 0:
                    raise InvalidUpdate("GC or Skip of length 0")
                if ref == _SKIP and contiguous:
                    contiguous = False
                    if clock:
                        state_vector[client] = clock
                clock += length
                if clock > MAX_CLOCK:
                    raise InvalidUpdate("clock beyond 2**31")
                continue
            # An item: where it goes (origin, right origin, or parent), then its content.
            level = 1
            if info & 0xC0:  # _HAS_ORIGIN | _HAS_RIGHT_ORIGIN
                for flag in (_HAS_ORIGIN, _HAS_RIGHT_ORIGIN):
                    if not info & flag:
                        continue
                    if data.startswith(last_raw, pos):
                        other = last_client
                        pos += len(last_raw)
                    else:
                        other, end = read_uint(data, pos)
                        last_raw, last_client = data[pos:end], other
                        pos = end
                    other_clock = data[pos]
                    pos += 1
                    if other_clock >= 0x80:
                        other_clock, pos = uint_tail(data, pos, other_clock)
                        if other_clock > MAX_CLOCK:
                            raise InvalidUpdate("clock beyond 2**31")
                    if other == client and other_clock >= clock:
                        what = "origin" if flag == _HAS_ORIGIN else "right origin"
                        raise InvalidUpdate(f"{what} is not before the item")
                    # Right of an origin the item splits after it, left of a right origin
                    # before it: never inside a surrogate pair of a string of this update.
                    if astral and other in astral:
                        _check_split(
                            astral[other], other_clock + 1 if flag == _HAS_ORIGIN else other_clock
                        )
                    # The parent is the origin's (or, without one, the right origin's).
                    if (
                        levels is not None
                        and levels.ranges
                        and (flag == _HAS_ORIGIN or not info & _HAS_ORIGIN)
                    ):
                        level = levels.of_item(other, other_clock)
            else:
                parent_info = data[pos]
                pos += 1
                if parent_info == 1:
                    pos = read_string(data, pos)[1]
                elif parent_info == 0:
                    if data.startswith(last_raw, pos):
                        other = last_client
                        pos += len(last_raw)
                    else:
                        other, end = read_uint(data, pos)
                        last_raw, last_client = data[pos:end], other
                        pos = end
                    other_clock = data[pos]
                    pos += 1
                    if other_clock >= 0x80:
                        other_clock, pos = uint_tail(data, pos, other_clock)
                        if other_clock > MAX_CLOCK:
                            raise InvalidUpdate("clock beyond 2**31")
                    if other == client and other_clock >= clock:
                        raise InvalidUpdate("parent is not before the item")
                    if levels is not None:
                        level = levels.types.get((other, other_clock), 1)
                else:
                    raise InvalidUpdate(f"unknown parent info {parent_info}")
                if info & _HAS_PARENT_SUB:
                    if ref == _FORMAT:  # yrs panics on its map events (and KeyErrors in reads)
                        raise InvalidUpdate("Format item under a map key")
                    # Map keys are short and ASCII: read_string's call and tuple are not.
                    key_length = data[pos]
                    end = pos + 1 + key_length
                    if key_length < 0x80 and end <= n and data[pos + 1 : end].isascii():
                        pos = end
                    else:
                        pos = read_string(data, pos)[1]
            is_type = False
            if ref == _STRING:
                raw, pos = read_string(data, pos)
                if raw.isascii():
                    length = len(raw)
                else:  # yjs counts UTF-16 code units: characters beyond the BMP count twice
                    pairs = four_byte_sequences(raw)
                    length = len(raw.decode()) + pairs
                    if pairs:  # references into this string are checked (_check_split)
                        astral.setdefault(client, []).append((clock, length, raw))
            elif ref == _ANY:
                length = data[pos]
                pos += 1
                if length >= 0x80:
                    length, pos = uint_tail(data, pos, length)
                if length > n - pos:
                    raise InvalidUpdate("more Any values than the update has bytes")
                # A map entry is one number or flag: skipped here, as skip_any_values would.
                tag = data[pos] if length == 1 else 0
                if tag == 123 or tag == 122:  # float64, BigInt64
                    pos += 9
                    if pos > n:
                        raise InvalidUpdate("number runs past the end of the update")
                elif tag == 124:  # float32
                    pos += 5
                    if pos > n:
                        raise InvalidUpdate("number runs past the end of the update")
                elif tag in (120, 121, 126, 127):  # true, false, null, undefined
                    pos += 1
                elif tag == 119 and (text_length := data[pos + 1]) < 0x80:  # a short string
                    end = pos + 2 + text_length
                    if end <= n and data[pos + 2 : end].isascii():
                        pos = end
                    else:
                        pos, depth = skip_any_values(data, pos, 1, 0, False)
                else:
                    pos, depth = skip_any_values(data, pos, length, 0, False)
                    if depth > max_depth:
                        max_depth = depth
            elif ref == _TYPE:
                is_type = True
                length = 1
                type_ref = data[pos]
                pos += 1
                if type_ref > _LAST_TYPE_REF:
                    raise InvalidUpdate(f"unknown type ref {type_ref}")
                if type_ref == _XML_HOOK:
                    raise InvalidUpdate("Y.XmlHook: yrs does not read its name as yjs writes it")
                if type_ref == _XML_ELEMENT:
                    pos = read_string(data, pos)[1]
            elif ref == _DELETED:
                length, pos = read_uint(data, pos)
            elif ref == _FORMAT:
                length = 1
                pos = read_string(data, pos)[1]
                pos, depth = check_json(data, pos)
                if depth > max_depth:
                    max_depth = depth
            elif ref == _EMBED:
                length = 1
                pos, depth = check_json(data, pos)
                if depth > max_depth:
                    max_depth = depth
            elif ref == _BINARY:
                length = 1
                pos = skip_buffer(data, pos)
            elif ref == _DOC:
                length = 1
                pos = read_string(data, pos)[1]
                if data[pos] != ANY_OBJECT:
                    raise InvalidUpdate("subdocument options are not an object")
                pos, depth = skip_any_values(data, pos, 1, 0, False)
                if depth > max_depth:
                    max_depth = depth
            elif ref == _JSON:
                _check_json_content(data, pos)
            else:
                raise InvalidUpdate(f"unknown content ref {ref}")
            if length == 0:
                raise InvalidUpdate("item of length 0")
            if is_type:
                if levels is None:
                    levels = _TypeLevels()
                levels.record(client, clock, length, level, True)
            elif level > 1:  # levels exists: only a type item of this update gives level > 1
                found = levels.ranges.get(client)  # type: ignore[union-attr]
                if found is None:
                    found = levels.ranges[client] = ([], [], [])  # type: ignore[union-attr]
                found[0].append(clock)
                found[1].append(clock + length)
                found[2].append(level)
            clock += length
            if clock > MAX_CLOCK:
                raise InvalidUpdate("clock beyond 2**31")
        clients[client] = (first, clock)
        if contiguous:
            state_vector[client] = clock
    delete_set, pos = _delete_set(data, pos)
    if pos != n:
        raise InvalidUpdate(f"{n - pos} trailing bytes after the update")
    for client, strings in astral.items():  # a deletion splits at both ends of its range
        for clock, length in delete_set.get(client, ()):
            _check_split(strings, clock)
            _check_split(strings, clock + length)
    return UpdateShape(
        clients, state_vector, delete_set, struct_count, max_depth, levels.deepest if levels else 0
    )


def _check_split(strings: list[tuple[int, int, bytes]], at: int) -> None:
    """Refuse a split at clock ``at`` of one of ``strings`` ((clock, length, UTF-8), in clock
    order) that falls between the two halves of a surrogate pair.

    yjs replaces such halves with U+FFFD; yrs 0.28 splits the string at a character boundary
    instead, after which the clocks it writes no longer match its strings: the document it
    encodes reads back differently, in yrs and in yjs (``docs/yrs-crashes.md``).
    """
    i = bisect_right(strings, (at,)) - 1  # the last string starting before ``at``
    if i < 0:
        return
    clock, length, raw = strings[i]
    if not clock < at < clock + length:
        return
    offset = at - clock
    units = 0
    for char in raw.decode():
        units += 2 if char > "\uffff" else 1
        if units >= offset:
            if units > offset:
                raise InvalidUpdate("reference inside a surrogate pair")
            return


def _check_json_content(data: bytes, pos: int) -> None:
    """Check a ContentJSON as yjs reads it, then refuse it: yrs would read it differently."""
    count, pos = read_uint(data, pos)
    if count == 0:
        raise InvalidUpdate("item of length 0")
    if count > len(data) - pos:
        raise InvalidUpdate("more JSON values than the update has bytes")
    for _ in range(count):
        raw, end = read_string(data, pos)
        if raw != b"undefined":  # yjs writes undefined this way
            check_json(data, pos)
        pos = end
    raise InvalidUpdate("ContentJSON: yrs reads one value more than yjs writes")


def _delete_set(data: bytes, pos: int) -> tuple[dict[int, list[tuple[int, int]]], int]:
    n = len(data)
    count, pos = read_uint(data, pos)
    if count > n - pos:
        raise InvalidUpdate("more delete-set clients than the update has bytes")
    delete_set: dict[int, list[tuple[int, int]]] = {}
    seen: set[int] = set()
    for _ in range(count):
        client, pos = read_uint(data, pos)
        if client in seen:  # yjs would merge the two, yrs keep the last
            raise InvalidUpdate(f"client {client} appears twice in the delete set")
        seen.add(client)
        ranges_count, pos = read_uint(data, pos)
        if ranges_count > (n - pos) >> 1:
            raise InvalidUpdate("more delete ranges than the update has bytes")
        ranges = []
        end = 0
        for _ in range(ranges_count):
            clock = data[pos]
            pos += 1
            if clock >= 0x80:
                clock, pos = uint_tail(data, pos, clock)
            length = data[pos]
            pos += 1
            if length >= 0x80:
                length, pos = uint_tail(data, pos, length)
            if length == 0:
                raise InvalidUpdate("delete range of length 0")
            if clock < end:
                raise InvalidUpdate("delete ranges out of order or overlapping")
            end = clock + length
            if end > MAX_CLOCK:  # clock and length are below 2**53: this bounds both
                raise InvalidUpdate("clock beyond 2**31")
            ranges.append((clock, length))
        if ranges:  # a client with no ranges deletes nothing (yjs skips it too)
            delete_set[client] = ranges
    return delete_set, pos
