"""Reading a client's frames in one pass, for the frame nearly every Yjs client sends.

Every y-protocols message arrives as one final, masked, binary frame (browsers and ``ws`` do not
fragment what they send). ``websockets``' parser reads each frame through a chain of generators
and a ``Frame`` object, then uvicorn's event loop over them: at scenario R3 of the benchmarks
that was about 7 % of the daemon's CPU. :func:`scan` finds where a frame ends from its header
alone, so that the WebSocket protocol (``websocket_protocol.py``) unmasks such a frame itself
and hands every other frame (control frames, text, fragments), whole, to ``websockets``, which
answers those as it always did. Nothing else changes hands: ``websockets`` only ever sees
complete frames from a frame boundary, so its parser is never left halfway through one of them.
"""

from __future__ import annotations

import struct
from enum import Enum

from websockets.frames import apply_mask

__all__ = ["BINARY_MESSAGE", "Scan", "scan", "unmask"]

# FIN set, no reserved bits, opcode 2: a whole binary message in one frame.
BINARY_MESSAGE = 0x82

_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")


class Scan(Enum):
    """What the bytes at a position hold."""

    MESSAGE = "a whole binary message in one masked frame"
    OTHER = "a whole frame of another kind, for websockets"
    INCOMPLETE = "the start of a frame that has not all arrived"
    TOO_LARGE = "a frame whose header announces more than the limit"


def scan(data: bytes, pos: int, limit: int) -> tuple[Scan, int, int]:
    """The frame starting at ``data[pos]``: its kind, where its payload starts and where it
    ends (for TOO_LARGE both are ``pos``; for INCOMPLETE the end is where the frame will end
    once its header has arrived, else ``pos``).

    A header announcing more than ``limit`` bytes is TOO_LARGE as soon as its length has
    arrived, so the refusal need not wait for the payload (``websockets`` decides it from the
    header too). An unmasked frame (a protocol error from a client) is OTHER once whole: its
    verdict is ``websockets``'.
    """
    end = len(data)
    if end - pos < 2:
        return Scan.INCOMPLETE, pos, pos
    first = data[pos]
    second = data[pos + 1]
    length = second & 0x7F
    head = pos + 2
    if length == 126:
        if end - head < 2:
            return Scan.INCOMPLETE, pos, pos
        (length,) = _U16.unpack_from(data, head)
        head += 2
    elif length == 127:
        if end - head < 8:
            return Scan.INCOMPLETE, pos, pos
        (length,) = _U64.unpack_from(data, head)
        head += 8
    if length > limit:
        return Scan.TOO_LARGE, pos, pos
    masked = second & 0x80
    if masked:
        head += 4
    stop = head + length
    if stop > end:
        return Scan.INCOMPLETE, pos, stop
    if first == BINARY_MESSAGE and masked:
        return Scan.MESSAGE, head, stop
    return Scan.OTHER, head, stop


def unmask(data: bytes, start: int, stop: int) -> bytes:
    """The payload of the masked frame whose payload is ``data[start:stop]`` (its masking key is
    the four bytes before ``start``), with ``websockets``' C unmasking."""
    view = memoryview(data)
    return apply_mask(view[start:stop], view[start - 4 : start])
