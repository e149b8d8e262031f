"""Hand-made Yjs v1 updates, byte by byte, for the strict decoder's tests.

Only what the tests need to craft shapes no honest writer makes: one client block of structs
and a delete set. See ``crdt/update_format.py`` for the format.
"""

from __future__ import annotations

from collections.abc import Iterable

from crdt.protocol import write_var_string, write_var_uint

vu = write_var_uint
vs = write_var_string

# lib0 Any tags
ANY_INT, ANY_FLOAT64, ANY_STRING, ANY_OBJECT, ANY_ARRAY, ANY_NULL = 125, 123, 119, 118, 117, 126


def update(
    blocks: Iterable[tuple[int, int, list[bytes]]] = (),
    delete_set: Iterable[tuple[int, list[tuple[int, int]]]] = (),
) -> bytes:
    """An update of ``(client, clock, structs)`` blocks and ``(client, ranges)`` deletions."""
    blocks, delete_set = list(blocks), list(delete_set)
    out = [vu(len(blocks))]
    for client, clock, structs in blocks:
        out += [vu(len(structs)), vu(client), vu(clock), *structs]
    out.append(vu(len(delete_set)))
    for client, ranges in delete_set:
        out += [vu(client), vu(len(ranges))]
        out += [vu(clock) + vu(length) for clock, length in ranges]
    return b"".join(out)


def one(struct: bytes, client: int = 1, clock: int = 0) -> bytes:
    """An update holding one struct."""
    return update([(client, clock, [struct])])


def item(ref: int, content: bytes, *, root: str = "t", key: str | None = None) -> bytes:
    """An item in root type ``root`` (under map key ``key``) with content ``ref``."""
    info = ref | (0x20 if key is not None else 0)
    out = bytes([info]) + vu(1) + vs(root)
    if key is not None:
        out += vs(key)
    return out + content


def item_in(ref: int, content: bytes, parent: tuple[int, int], key: str | None = None) -> bytes:
    """An item whose parent is the type item ``parent`` (client, clock)."""
    info = ref | (0x20 if key is not None else 0)
    out = bytes([info]) + vu(0) + vu(parent[0]) + vu(parent[1])
    if key is not None:
        out += vs(key)
    return out + content


def item_after(ref: int, content: bytes, origin: tuple[int, int]) -> bytes:
    """An item right of ``origin`` (its parent is the origin's)."""
    return bytes([0x80 | ref]) + vu(origin[0]) + vu(origin[1]) + content


def item_between(
    ref: int, content: bytes, origin: tuple[int, int], right: tuple[int, int]
) -> bytes:
    """An item between ``origin`` and its right origin ``right``."""
    out = bytes([0xC0 | ref]) + vu(origin[0]) + vu(origin[1]) + vu(right[0]) + vu(right[1])
    return out + content


def string(text: str) -> bytes:
    return item(4, vs(text))


def any_item(*values: bytes, key: str | None = "k") -> bytes:
    """ContentAny of already-encoded lib0 Any values, in root map ``t``."""
    return item(8, vu(len(values)) + b"".join(values), key=key)


def any_int(n: int) -> bytes:
    """lib0 varInt: 6 bits and the sign in the first byte."""
    sign = 0x40 if n < 0 else 0
    n = abs(n)
    first = sign | (n & 0x3F)
    n >>= 6
    if not n:
        return bytes([ANY_INT, first])
    out = bytearray([ANY_INT, 0x80 | first])
    while n > 0x7F:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    out.append(n)
    return bytes(out)


def any_string(text: str) -> bytes:
    return bytes([ANY_STRING]) + vs(text)


def nested_arrays(depth: int, leaf: bytes = b"\x7e") -> bytes:
    """``depth`` Any arrays, each holding the next; the innermost holds ``leaf``."""
    return bytes([ANY_ARRAY, 1]) * depth + leaf


def nested_objects(depth: int) -> bytes:
    return (bytes([ANY_OBJECT, 1]) + vs("k")) * depth + b"\x7e"


def type_chain(depth: int, client: int = 1) -> bytes:
    """``depth`` Y.Maps, each under key "k" of the one before (the first in root map "t")."""
    structs = [item(7, b"\x01", key="k")]
    structs += [item_in(7, b"\x01", (client, i - 1), key="k") for i in range(1, depth)]
    return update([(client, 0, structs)])
