"""The Hocuspocus wire framing: many documents over one WebSocket. Pure functions, no I/O.

Every frame is one message for one document, addressed by name::

    frame     := varString(address) varUint(type) payload
    address   := document name, or name "\\0" session id (a provider with sessionAwareness)
    sync      := 0 varUint(step) varUint8Array(data)     # y-protocols sync, as on /v1/docs
    awareness := 1 varUint8Array(awareness update)
    auth      := 2 varUint(0) varString(token) [varString(provider version)]   # client: token
               | 2 varUint(0)                                                  # server: send it
               | 2 varUint(1) varString(reason)                                # permission denied
               | 2 varUint(2) varString("readonly" | "read-write")             # authenticated
    query     := 3                                         # query awareness
    stateless := 5 varString(payload)
    close     := 7 [varString(reason)]                     # client: leave this document
    status    := 8 varUint(0 | 1)                          # SyncStatus: update stored or not

These are the numbers of ``@hocuspocus/provider`` 4.x (``MessageType`` and the common package's
``AuthMessageType``). Types 4 (sync reply) and 6 (broadcast stateless) are server-to-server in
Hocuspocus, 9/10 (ping/pong) carry no address; a client sends none of them, so they do not
decode here.

Both directions decode, so one codec serves the daemon and the test clients: the auth subtypes
are distinct and a token request is the token message without a token. Decoding is strict as in
:mod:`crdt.protocol`: a truncated varint, a length past the end, an unknown type or subtype, a
bad scope or trailing bytes raise :class:`ProtocolError`. The daemon still decides which of the
decoded messages a client may send (a client's ``SyncStatus`` is decodable but meaningless).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal, cast

from .protocol import (
    AwarenessMessage,
    Decoder,
    ProtocolError,
    QueryAwarenessMessage,
    SyncMessage,
    SyncStep,
    write_var_string,
    write_var_uint,
    write_var_uint8array,
)

__all__ = [
    "SCOPES",
    "Authenticated",
    "Close",
    "Frame",
    "HpMessage",
    "HpType",
    "PermissionDenied",
    "Scope",
    "Stateless",
    "SyncStatus",
    "Token",
    "TokenRequest",
    "address_prefix",
    "decode_frame",
    "encode_frame",
    "split_address",
]

Scope = Literal["readonly", "read-write"]
SCOPES: tuple[Scope, ...] = ("readonly", "read-write")

# The separator between document name and session id in an address (``makeRoutingKey``).
_SESSION_SEPARATOR = "\0"


class HpType(enum.IntEnum):
    SYNC = 0
    AWARENESS = 1
    AUTH = 2
    QUERY_AWARENESS = 3
    STATELESS = 5
    CLOSE = 7
    SYNC_STATUS = 8


class AuthType(enum.IntEnum):
    TOKEN = 0
    PERMISSION_DENIED = 1
    AUTHENTICATED = 2


@dataclass(frozen=True, slots=True)
class Token:
    """Client → server: open the document with this token."""

    token: str
    version: str | None = None  # providers since 4.0 say which version they are


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """Server → client: send your token (again)."""


@dataclass(frozen=True, slots=True)
class PermissionDenied:
    reason: str


@dataclass(frozen=True, slots=True)
class Authenticated:
    scope: Scope


@dataclass(frozen=True, slots=True)
class Stateless:
    payload: str


@dataclass(frozen=True, slots=True)
class Close:
    """From a client (no reason): leave this document. From the server: it was closed."""

    reason: str | None = None


@dataclass(frozen=True, slots=True)
class SyncStatus:
    """Server → client: the sync step 2 / update the client sent was stored (or refused)."""

    stored: bool


HpMessage = (
    SyncMessage
    | AwarenessMessage
    | QueryAwarenessMessage
    | Token
    | TokenRequest
    | PermissionDenied
    | Authenticated
    | Stateless
    | Close
    | SyncStatus
)


@dataclass(frozen=True, slots=True)
class Frame:
    address: str
    message: HpMessage


def split_address(address: str) -> tuple[str, str | None]:
    """``(document name, session id or None)`` of an address."""
    name, sep, session = address.partition(_SESSION_SEPARATOR)
    return name, (session if sep else None)


def address_prefix(address: str) -> bytes:
    """The bytes that turn a y-protocols sync/awareness message into a frame for ``address``.

    The y-protocols and Hocuspocus type numbers agree for sync (0) and awareness (1), so a
    message the room encoded once is framed per connection by concatenation.
    """
    return write_var_string(address)


def decode_frame(frame: bytes) -> Frame:
    """Decode one Hocuspocus frame.

    Raises:
        ProtocolError: bad varint, bad length, bad UTF-8, unknown type, subtype or scope,
            trailing bytes.
    """
    dec = Decoder(frame)
    address = dec.read_var_string()
    kind = dec.read_var_uint()
    msg: HpMessage
    if kind == HpType.SYNC:
        step = dec.read_var_uint()
        if step > SyncStep.UPDATE:
            raise ProtocolError(f"unknown sync step {step}")
        msg = SyncMessage(SyncStep(step), dec.read_var_uint8array())
    elif kind == HpType.AWARENESS:
        msg = AwarenessMessage(dec.read_var_uint8array())
    elif kind == HpType.AUTH:
        msg = _decode_auth(dec)
    elif kind == HpType.QUERY_AWARENESS:
        msg = QueryAwarenessMessage()
    elif kind == HpType.STATELESS:
        msg = Stateless(dec.read_var_string())
    elif kind == HpType.CLOSE:
        msg = Close(None if dec.at_end() else dec.read_var_string())
    elif kind == HpType.SYNC_STATUS:
        status = dec.read_var_uint()
        if status > 1:
            raise ProtocolError(f"sync status {status} is not 0 or 1")
        msg = SyncStatus(status == 1)
    else:
        raise ProtocolError(f"unknown message type {kind}")
    dec.expect_end()
    return Frame(address, msg)


def _decode_auth(dec: Decoder) -> HpMessage:
    sub = dec.read_var_uint()
    if sub == AuthType.TOKEN:
        if dec.at_end():
            return TokenRequest()
        token = dec.read_var_string()
        return Token(token, None if dec.at_end() else dec.read_var_string())
    if sub == AuthType.PERMISSION_DENIED:
        return PermissionDenied(dec.read_var_string())
    if sub == AuthType.AUTHENTICATED:
        scope = dec.read_var_string()
        if scope in SCOPES:
            return Authenticated(cast(Scope, scope))
        raise ProtocolError(f"unknown scope {scope!r}")
    raise ProtocolError(f"unknown auth message {sub}")


def encode_frame(address: str, message: HpMessage) -> bytes:
    """Encode ``message`` for the document at ``address``."""
    return address_prefix(address) + _encode_body(message)


def _encode_body(message: HpMessage) -> bytes:
    match message:
        case SyncMessage(step, payload):
            return bytes((HpType.SYNC, step)) + write_var_uint8array(payload)
        case AwarenessMessage(update):
            return bytes((HpType.AWARENESS,)) + write_var_uint8array(update)
        case QueryAwarenessMessage():
            return bytes((HpType.QUERY_AWARENESS,))
        case Token(token, version):
            body = bytes((HpType.AUTH, AuthType.TOKEN)) + write_var_string(token)
            return body if version is None else body + write_var_string(version)
        case TokenRequest():
            return bytes((HpType.AUTH, AuthType.TOKEN))
        case PermissionDenied(reason):
            return bytes((HpType.AUTH, AuthType.PERMISSION_DENIED)) + write_var_string(reason)
        case Authenticated(scope):
            if scope not in SCOPES:
                raise ValueError(f"unknown scope {scope!r}")
            return bytes((HpType.AUTH, AuthType.AUTHENTICATED)) + write_var_string(scope)
        case Stateless(payload):
            return bytes((HpType.STATELESS,)) + write_var_string(payload)
        case Close(reason):
            body = bytes((HpType.CLOSE,))
            return body if reason is None else body + write_var_string(reason)
        case SyncStatus(stored):
            return bytes((HpType.SYNC_STATUS,)) + write_var_uint(1 if stored else 0)
    raise TypeError(f"not a Hocuspocus message: {message!r}")
