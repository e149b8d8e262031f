"""Helpers over Yjs v1 updates (bytes), built on pycrdt's Rust core. No I/O."""

from __future__ import annotations

import pycrdt

from .protocol import ProtocolError

__all__ = ["EMPTY_UPDATE", "merge", "state_vector", "validate_update"]

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


def merge(updates: list[bytes]) -> bytes:
    """Merge updates into one without a document (Yjs ``mergeUpdates``); keeps deleted content."""
    if not updates:
        return EMPTY_UPDATE
    if len(updates) == 1:
        return updates[0]
    return pycrdt.merge_updates(*updates)
