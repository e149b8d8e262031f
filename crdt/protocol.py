"""The y-protocols wire codec: pure functions over bytes, no I/O.

A y-websocket frame carries one message::

    message   := varUint(type) payload
    sync      := 0 varUint(step) varUint8Array(data)   # step 0: state vector, 1: update, 2: update
    awareness := 1 varUint8Array(awareness update)
    auth      := 2 varUint(0) varString(reason)        # 0 = permission denied
    query     := 3

Decoding is strict: a truncated varint, a length that runs past the end of the frame or trailing
bytes raise :class:`ProtocolError`, which the daemon turns into close code 4400. Being strict
here is what lets the rest of the server trust a decoded message.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "AuthMessage",
    "AwarenessMessage",
    "Decoder",
    "MessageType",
    "ProtocolError",
    "QueryAwarenessMessage",
    "SyncMessage",
    "SyncStep",
    "decode_message",
    "encode_auth_denied",
    "encode_awareness",
    "encode_query_awareness",
    "encode_sync",
    "write_var_string",
    "write_var_uint",
    "write_var_uint8array",
]

# lib0 encodes integers up to 2**53 - 1 (JavaScript's safe integers); anything longer is garbage.
_MAX_VARINT_BYTES = 8


class ProtocolError(ValueError):
    """A frame that does not decode as a y-protocols message."""


class MessageType(enum.IntEnum):
    SYNC = 0
    AWARENESS = 1
    AUTH = 2
    QUERY_AWARENESS = 3


class SyncStep(enum.IntEnum):
    STEP1 = 0
    STEP2 = 1
    UPDATE = 2


def write_var_uint(value: int) -> bytes:
    if value < 0:
        raise ValueError("varUint cannot encode a negative number")
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def write_var_uint8array(data: bytes) -> bytes:
    return write_var_uint(len(data)) + data


def write_var_string(text: str) -> bytes:
    return write_var_uint8array(text.encode())


class Decoder:
    """A cursor over one frame. Every read checks the bounds."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def read_var_uint(self) -> int:
        data, pos = self.data, self.pos
        value = 0
        shift = 0
        for i in range(_MAX_VARINT_BYTES):
            if pos + i >= len(data):
                raise ProtocolError("truncated varint")
            byte = data[pos + i]
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                self.pos = pos + i + 1
                return value
            shift += 7
        raise ProtocolError("varint longer than 8 bytes")

    def read_var_uint8array(self) -> bytes:
        length = self.read_var_uint()
        end = self.pos + length
        if end > len(self.data):
            raise ProtocolError(f"length {length} runs past the end of the frame")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def read_var_string(self) -> str:
        raw = self.read_var_uint8array()
        try:
            return raw.decode()
        except UnicodeDecodeError as exc:
            raise ProtocolError("string is not UTF-8") from exc

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def expect_end(self) -> None:
        if not self.at_end():
            raise ProtocolError(f"{len(self.data) - self.pos} trailing bytes after the message")


@dataclass(frozen=True, slots=True)
class SyncMessage:
    step: SyncStep
    payload: bytes


@dataclass(frozen=True, slots=True)
class AwarenessMessage:
    update: bytes


@dataclass(frozen=True, slots=True)
class AuthMessage:
    denied_reason: str


@dataclass(frozen=True, slots=True)
class QueryAwarenessMessage:
    pass


Message = SyncMessage | AwarenessMessage | AuthMessage | QueryAwarenessMessage


def decode_message(frame: bytes) -> Message:
    """Decode one y-protocols message that fills the whole frame.

    Raises:
        ProtocolError: bad varint, bad length, unknown type or trailing bytes.
    """
    dec = Decoder(frame)
    kind = dec.read_var_uint()
    msg: Message
    if kind == MessageType.SYNC:
        step = dec.read_var_uint()
        if step > SyncStep.UPDATE:
            raise ProtocolError(f"unknown sync step {step}")
        msg = SyncMessage(SyncStep(step), dec.read_var_uint8array())
    elif kind == MessageType.AWARENESS:
        msg = AwarenessMessage(dec.read_var_uint8array())
    elif kind == MessageType.AUTH:
        if dec.read_var_uint() != 0:
            raise ProtocolError("unknown auth message")
        msg = AuthMessage(dec.read_var_string())
    elif kind == MessageType.QUERY_AWARENESS:
        msg = QueryAwarenessMessage()
    else:
        raise ProtocolError(f"unknown message type {kind}")
    dec.expect_end()
    return msg


def encode_sync(step: SyncStep, payload: bytes) -> bytes:
    return bytes((MessageType.SYNC, step)) + write_var_uint8array(payload)


def encode_awareness(update: bytes) -> bytes:
    return bytes((MessageType.AWARENESS,)) + write_var_uint8array(update)


def encode_auth_denied(reason: str) -> bytes:
    return bytes((MessageType.AUTH, 0)) + write_var_string(reason)


def encode_query_awareness() -> bytes:
    return bytes((MessageType.QUERY_AWARENESS,))
