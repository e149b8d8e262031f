"""Helpers over Yjs v1 updates (bytes), built on pycrdt's Rust core. No I/O."""

from __future__ import annotations

import pycrdt

from .protocol import Decoder, ProtocolError

__all__ = [
    "EMPTY_UPDATE",
    "decode_state_vector",
    "merge",
    "state_vector",
    "validate_update",
]

# An update with no structs and an empty delete set: what Yjs sends when it has nothing new.
EMPTY_UPDATE = b"\x00\x00"


def validate_update(update: bytes) -> None:
    """Raise :class:`ProtocolError` unless ``update`` decodes as a Yjs v1 update.

    Decoding the whole update (to compute its state vector) touches no document, so an invalid
    update is rejected before it can reach the store or a replica.
    """
    try:
        pycrdt.get_state(update)
    except ValueError as exc:
        raise ProtocolError("not a valid Yjs update") from exc


def state_vector(update: bytes) -> bytes:
    return pycrdt.get_state(update)


def decode_state_vector(sv: bytes) -> dict[int, int]:
    """A state vector as {client id: clock}; its byte encoding is not canonical, this is."""
    dec = Decoder(sv)
    entries = {}
    for _ in range(dec.read_var_uint()):
        client = dec.read_var_uint()
        entries[client] = dec.read_var_uint()
    dec.expect_end()
    return entries


def merge(updates: list[bytes]) -> bytes:
    """Merge updates into one without a document (Yjs ``mergeUpdates``); keeps deleted content."""
    if not updates:
        return EMPTY_UPDATE
    if len(updates) == 1:
        return updates[0]
    return pycrdt.merge_updates(*updates)
