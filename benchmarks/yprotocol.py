"""The y-protocols sync messages the load generator speaks, as pure functions.

One message per WebSocket frame: ``[type varUint][subtype varUint][payload length][payload]``.
"""

from __future__ import annotations

import hashlib

from pycrdt import write_var_uint

MSG_SYNC, MSG_AWARENESS, MSG_AUTH, MSG_QUERY_AWARENESS = 0, 1, 2, 3
SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE = 0, 1, 2
EMPTY_UPDATE = b"\x00\x00"


def sync_message(subtype: int, payload: bytes) -> bytes:
    """A y-protocols sync message: ``[0][subtype][varUint len][payload]``."""
    return bytes((MSG_SYNC, subtype)) + write_var_uint(len(payload)) + payload


def create_update_message(update: bytes) -> bytes:
    """Wrap a Yjs update as a sync update message."""
    return sync_message(SYNC_UPDATE, update)


def read_var_uint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode a lib0 varUint at ``pos``; return ``(value, next_pos)``.

    Raises:
        ValueError: if the buffer ends inside the number or the number is absurdly long.
    """
    value = 0
    shift = 0
    for _ in range(10):
        if pos >= len(buf):
            raise ValueError("truncated varUint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise ValueError("varUint longer than 10 bytes")


def doc_digest(doc_json: str) -> str:
    return hashlib.sha1(doc_json.encode()).hexdigest()[:16]
